"""One module per `cyclegan` subcommand: `NAME`, `HELP` (its line in `cyclegan --help`), `add_parser(subparsers)`
and `run(args) -> int`.

Importing a command module must stay cheap (no torch at module level): `cyclegan --help` imports them all and
builds only the chosen command's parser (cyclegan.cli).
"""

from __future__ import annotations

import argparse


def add_network_mode(p: argparse.ArgumentParser) -> None:
    """--train-mode / --eval-mode (args.train_mode: True, False, or None for the method's own choice)."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--train-mode",
        dest="train_mode",
        action="store_const",
        const=True,
        default=None,
        help="dropout on / batch statistics (the reference's test.py default for pix2pix)",
    )
    mode.add_argument("--eval-mode", dest="train_mode", action="store_const", const=False, help="networks in eval mode")
