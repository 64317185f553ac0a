"""One process trains a run at a time (train/lock.py): a second `cyclegan train` on a run that is training stops
with exit 2 and a message naming the holder, before it reads or writes anything; a killed run leaves no lock."""

import json
import os
import signal
import socket

import pytest

from conftest import needs_horse2zebra
from cyclegan.cli import main
from cyclegan.train.lock import LOCK_FILE, RunInUse, RunLock

from .helpers import cli, real_data, start_train, tiny_sets, wait_for_step


def test_a_second_holder_is_refused_until_the_first_releases(tmp_path):
    with RunLock(tmp_path) as first:
        first.acquire()
        first.acquire()  # idempotent
        with pytest.raises(RunInUse) as refused:
            RunLock(tmp_path).acquire()  # another open file description: flock refuses it, even in this process
        message = str(refused.value)
        assert message.startswith(f"{tmp_path} is being trained by another process (pid {os.getpid()} on ")
        assert socket.gethostname() in message and f"cyclegan train --resume {tmp_path}" in message
        assert f"(`kill -TERM {os.getpid()}` saves and exits)" in message
    with RunLock(tmp_path) as second:  # released at the end of the block
        second.acquire()
    assert (tmp_path / LOCK_FILE).is_file()


def test_a_holder_record_not_yet_written_still_gives_a_clear_refusal(tmp_path):
    with RunLock(tmp_path) as first:
        first.acquire()
        (tmp_path / LOCK_FILE).write_text('{"pid": 12')  # caught between the holder's truncate and its write
        with pytest.raises(RunInUse, match=r"by another process; .*`kill -TERM <pid>`"):
            RunLock(tmp_path).acquire()


def test_disabled_lock_touches_nothing(tmp_path):
    with RunLock(tmp_path, enabled=False) as lock:  # ranks other than 0
        lock.acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_file_system_without_flock_trains_unlocked(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with RunLock(tmp_path) as lock:
        lock.acquire()  # no error: some network mounts refuse flock, and training must still run there
        RunLock(tmp_path).acquire()


@needs_horse2zebra
def test_resuming_a_run_that_trains_elsewhere_is_refused_and_a_killed_run_resumes(tmp_path):
    data, run = real_data(tmp_path / "data"), tmp_path / "run"
    sets = tiny_sets("optim.n_epochs=100000", "train.log_every=1")  # trains until killed
    assert main(["train", str(data), "--run-dir", str(run), "--preset", "quick", *sets, "--max-steps", "2"]) == 0
    proc = start_train("--resume", run, "--max-steps", "0")  # 0: no limit
    try:
        wait_for_step(run, proc, 4)
        machines = (run / "environment.jsonl").read_text()
        second = cli("train", "--resume", run, "--max-steps", "0")
        assert second.returncode == 2, (second.stdout, second.stderr)
        assert f"error: {run} is being trained by another process (pid {proc.pid} on " in second.stderr
        assert "Traceback" not in second.stderr
        assert (run / "environment.jsonl").read_text() == machines  # it wrote nothing into the run
    finally:
        proc.send_signal(signal.SIGKILL)  # as an OOM killer or a lost node would: no chance to unlock
        proc.communicate(timeout=60)
    step = max(json.loads(line).get("step", 0) for line in (run / "log.jsonl").read_text().splitlines())
    assert main(["train", "--resume", str(run), "--max-steps", str(step + 2)]) == 0  # the kernel dropped the lock
