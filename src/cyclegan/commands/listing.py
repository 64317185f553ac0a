"""`cyclegan list`: what can be chosen by name."""

from __future__ import annotations

NAME = "list"
HELP = "list networks, methods, presets, metrics, label palettes and augmentations"


def add_parser(sub):
    return sub.add_parser(NAME, help=HELP)


def run(args) -> int:
    from ..config import PRESETS
    from ..methods import METHODS
    from ..nets import DISCRIMINATORS, GENERATORS, INITS, NORMS

    rows = [
        ("methods", METHODS.names()),
        ("generators", GENERATORS.names()),
        ("discriminators", DISCRIMINATORS.names()),
        ("norms", list(NORMS)),
        ("inits", list(INITS)),
        ("presets", list(PRESETS)),
    ]
    from ..evaluate import EVAL_METRICS, PALETTES

    rows.append(("metrics", list(EVAL_METRICS)))  # what `cyclegan evaluate --metrics` takes
    rows.append(("palettes", list(PALETTES)))  # `cyclegan evaluate --palette`, loss.cycle_palette_a/b
    from ..augment import POLICIES

    rows.append(("augmentations", list(POLICIES)))  # loss.diffaugment, comma-separated
    for name, items in rows:
        print(f"{name:15s} {', '.join(items)}")
    return 0
