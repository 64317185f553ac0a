"""`cyclegan train | translate | demo | list ...`: the command line.

Every subcommand module provides `NAME`, `HELP`, `add_parser(subparsers)` and `run(args) -> int`
(cyclegan.commands). Only the chosen command's parser is built, so `cyclegan --help` and `cyclegan translate
--help` answer without importing torch. Bad input raises UserError, printed as one line with exit code 2 (a
traceback only with --debug).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path

from .errors import UserError

# Subcommand modules, in the order `--help` lists them.
COMMANDS = [
    "cyclegan.commands.train",
    "cyclegan.commands.translate",
    "cyclegan.commands.evaluate",
    "cyclegan.commands.fid",
    "cyclegan.commands.study",
    "cyclegan.commands.export",
    "cyclegan.commands.package",
    "cyclegan.commands.serve",
    "cyclegan.commands.check",
    "cyclegan.commands.demo",
    "cyclegan.commands.listing",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with `command`, only that one's options are built (some need torch to
    list their choices) and the others are listed by name and HELP alone."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cyclegan",
        description="Unpaired image-to-image translation (CycleGAN) and relatives: train, translate, evaluate, export.",
        formatter_class=_CommandListFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cyclegan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(name)
        if command is not None and module.NAME != command:
            sub.add_parser(module.NAME, help=module.HELP)  # never parsed: `command` is another one
            continue
        p = module.add_parser(sub)
        p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        p.set_defaults(_run=module.run)
    return parser


class _CommandListFormatter(argparse.HelpFormatter):
    """argparse measures the command names 2 columns short of where it prints them (Python 3.11), so a name of 9+
    letters ('translate') got its help on the next line: count the real indent."""

    def add_argument(self, action):
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction) and action.choices:
            width = max(map(len, action.choices)) + self._current_indent + self._indent_increment
            self._action_max_length = max(self._action_max_length, width)


def command_word(argv: list[str]) -> str:
    """The subcommand in argv: its first word that is not an option ('' for none; no top-level option takes a
    value)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as `warning: ...` lines (cyclegan's own; others keep their source location)."""
    own = issubclass(category, UserWarning) and str(filename).startswith(_PACKAGE)
    text = f"warning: {message}\n" if own else _python_warning(message, category, filename, lineno, line)
    print(text, end="", file=file or sys.stderr)


_python_warning = warnings.formatwarning
_PACKAGE = str(Path(__file__).resolve().parent)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser(command_word(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        if args.debug:
            raise
        from .progress import end_bars

        end_bars()  # the error on a line of its own, not after a progress bar's last frame
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code  # 2; 4 for a diverged run (docs/reliability.md)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def default_run_dir(name: str | None) -> Path:
    return Path("runs") / (name or time.strftime("%Y%m%d-%H%M%S"))


if __name__ == "__main__":
    sys.exit(main())
