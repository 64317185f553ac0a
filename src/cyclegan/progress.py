"""Progress bars that suit where they are written: live on a terminal, sparse in a log file."""

from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0  # seconds between bar updates when stderr is a file or a pipe (nohup, CI logs)


def progress_bar(iterable=None, **kwargs):
    """tqdm(iterable, **kwargs), redrawn at most every LOG_INTERVAL_S seconds when stderr is not a
    terminal: a redirected bar otherwise writes several carriage-return updates a second into the log."""
    from tqdm import tqdm

    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        # tqdm's monitor thread redraws a slow bar every `maxinterval` (10 s) regardless of mininterval
        kwargs.setdefault("maxinterval", max(LOG_INTERVAL_S, kwargs["mininterval"]))
    return tqdm(iterable, **kwargs)


def end_bars() -> None:
    """Close the bars still open (an error ended their loop), so that the message that follows starts a line of
    its own rather than trailing the bar's last frame."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
