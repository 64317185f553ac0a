"""`python -m cyclegan ...`, the same as the `cyclegan` command; lets torchrun start it with `-m cyclegan`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
