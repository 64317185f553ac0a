"""Where metrics keep what they compute once: converted Inception weights and folder features."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    """`$CYCLEGAN_CACHE`, else `$XDG_CACHE_HOME/cyclegan`, else `~/.cache/cyclegan` (not created)."""
    if os.environ.get("CYCLEGAN_CACHE"):
        return Path(os.environ["CYCLEGAN_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cyclegan"


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it onto `path`.

    A reader never sees a half-written cache entry, even if two processes fill the cache at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache entry is ordinary data
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
