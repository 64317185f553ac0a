"""One process trains a run directory at a time.

Two processes training one run both write its checkpoints and log.jsonl: each saves over the other's state, and a
later resume continues neither run. It happens when a job is requeued while the preempted one is still running,
or when a run still training in one terminal is resumed in another. So the trainer holds an advisory lock,
flock(2) on RUN/.lock, for as long as it trains; the kernel drops it when the process ends, however it ends (a
SIGKILL leaves no stale lock to clear by hand). The file also says who holds it (pid, host, start), for the
message the second process prints. Where flock is missing (Windows, file systems without it) nothing is locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".lock"


class RunInUse(UserError):
    """Another live process trains this run directory."""


class RunLock:
    """`with RunLock(run_dir) as lock: ... lock.acquire() ...`: held from `acquire` (idempotent) to the end of the
    block. `acquire` raises RunInUse, naming the holder and what to do, when another process holds the run. With
    enabled=False (the ranks other than 0 of a distributed run) it does nothing."""

    def __init__(self, run_dir: Path, *, enabled: bool = True):
        self.path = Path(run_dir) / LOCK_FILE
        self.enabled = enabled and fcntl is not None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None or not self.enabled:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(os.read(fd, 4096))
            os.close(fd)
            run, pid = self.path.parent, holder.get("pid", "<pid>")
            who = f" (pid {pid} on {holder['host']}, since {holder['since']})" if holder else ""
            raise RunInUse(
                f"{run} is being trained by another process{who}; two processes would save over each other's "
                f"checkpoints. Wait for it to end, or stop it (`kill -TERM {pid}` saves and exits), then continue "
                f"with: cyclegan train --resume {run}"
            ) from None
        except OSError:  # a file system without flock (some network mounts): train unlocked, as before locks
            os.close(fd)
            return
        os.ftruncate(fd, 0)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(content: bytes) -> dict:
    """The holder's record (pid, host, since), or {} when it cannot be read (the holder is writing it)."""
    try:
        holder = json.loads(content.decode())
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) and {"pid", "host", "since"} <= holder.keys() else {}
