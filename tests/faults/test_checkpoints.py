"""Checkpoint rotation and verification: the previous resume state is kept beside the latest, a damaged latest
falls back to it, a full disk leaves the previous checkpoint intact, `cyclegan check` says what can resume."""

import errno
import os
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import needs_horse2zebra
from cyclegan import checkpoint as ckpt
from cyclegan.cli import main
from cyclegan.errors import UserError

from .helpers import assert_same_state, cli, one_line_error, real_data, state_tensors, tiny_sets

pytestmark = needs_horse2zebra


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return real_data(tmp_path_factory.mktemp("ckpt") / "data")


def _train(data, run, *extra):
    """A healthy run, in this process (the faults are injected into the real processes that follow)."""
    assert main(["train", str(data), "--run-dir", str(run), "--preset", "quick", *tiny_sets(), *map(str, extra)]) == 0


def test_truncated_latest_resumes_from_previous_with_a_warning_and_check_says_so(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run, "--max-steps", "4")  # saves at the end of epoch 1 (step 4)...
    assert main(["train", "--resume", str(run), "--max-steps", "6"]) == 0  # ...then at step 6: latest 6, previous 4
    steps = {k: ckpt.read_meta(run / "checkpoints" / f"{k}.state.safetensors")["step"] for k in ("latest", "previous")}
    assert steps == {"latest": 6, "previous": 4}

    (run / "checkpoints" / ".latest.state.safetensors.x1y2.tmp").write_bytes(b"cut")  # what kill -9 mid-write leaves
    check = cli("check", run)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok       latest.state.safetensors" in check.stdout and "resume state, step 6" in check.stdout
    assert "leftover .latest.state.safetensors.x1y2.tmp  a temporary file of an interrupted write" in check.stdout
    assert "can resume: `cyclegan train --resume" in check.stdout and "from latest.state.safetensors" in check.stdout
    starts = [line for line in check.stdout.splitlines() if line.startswith("machine ")]  # where each start computed
    assert [line.split(":")[0] for line in starts] == ["machine  from step 0", "machine  from step 4"]
    assert all(f"torch {torch.__version__}" in line for line in starts)

    latest = run / "checkpoints" / "latest.state.safetensors"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # a write cut short (node died, disk full)
    check = cli("check", run)
    assert check.returncode == 1
    assert "DAMAGED  latest.state.safetensors" in check.stdout and "truncated" in check.stdout
    assert "continues from previous.state.safetensors (resume state, step 4" in check.stdout

    out = cli("train", "--resume", run, "--max-steps", "8")
    assert out.returncode == 0, out.stderr
    assert f"warning: {latest} is damaged (truncated" in out.stderr
    assert "resuming from previous.state.safetensors, the state saved before it (step 4)" in out.stderr
    assert "finished" in out.stdout or "stopped early at step 8" in out.stdout
    _train(data, tmp_path / "straight", "--max-steps", "8")
    assert_same_state(run, tmp_path / "straight")  # resumed from step 4: still the run that never stopped


def test_both_states_damaged_is_one_clear_line(data, tmp_path):
    run = tmp_path / "run"
    _train(data, run, "--max-steps", "2")
    (run / "checkpoints" / "latest.state.safetensors").write_bytes(b"\0" * 100)
    out = cli("train", "--resume", run)
    assert out.returncode == 2
    assert "is damaged" in one_line_error(out) and "cannot resume" in one_line_error(out)
    assert "cannot resume" in cli("check", run).stdout


def test_write_is_verified_before_the_previous_state_is_dropped(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "latest.state.safetensors"
    ckpt.save_state(path, {"w": torch.zeros(3)}, {"step": 1})
    ckpt.save_state(path, {"w": torch.ones(3)}, {"step": 2})
    real_save = ckpt.save_file

    def short_write(tensors, tmp, metadata):  # a file system that lies: the write "succeeds", half the bytes land
        real_save(tensors, tmp, metadata=metadata)
        data = Path(tmp).read_bytes()
        Path(tmp).write_bytes(data[: len(data) - 4])

    monkeypatch.setattr(ckpt, "save_file", short_write)
    with pytest.raises(UserError, match="was written but does not read back .truncated.*saved before is intact"):
        ckpt.save_state(path, {"w": torch.full((3,), 3.0)}, {"step": 3})
    assert ckpt.read_meta(path)["step"] == 2 and ckpt.read_meta(ckpt.previous_path(path))["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.state.safetensors", "previous.state.safetensors"]


def test_disk_full_during_a_save_patched_writer(tmp_path, monkeypatch):
    path = tmp_path / "latest.state.safetensors"
    ckpt.save_state(path, {"w": torch.ones(3)}, {"step": 2})

    def disk_full(tensors, tmp, metadata):
        Path(tmp).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", disk_full)
    with pytest.raises(
        UserError,
        match=r"could not write .*latest.state.safetensors \(no space left on the device\); "
        r"the latest.state.safetensors saved before is intact",
    ):
        ckpt.save_state(path, {"w": torch.zeros(3)}, {"step": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["latest.state.safetensors"]
    assert torch.equal(ckpt.load_tree(path)[0]["w"], torch.ones(3))


def test_save_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    ckpt.save_state(tmp_path / "latest.state.safetensors", {"w": torch.ones(3)}, {"step": 1})
    assert any(p.endswith(".tmp") for p in synced) and str(tmp_path) in synced  # the file, then the folder


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda b: b[:-10], "truncated"),
        (lambda b: b + b"xx", "trailing bytes"),
        (lambda b: b[:5], "shorter than a safetensors header"),
        (lambda b: b[:8] + b"{" * 20 + b[28:], "header is not valid JSON"),
    ],
)
def test_verify_file_names_the_damage(tmp_path, damage, problem):
    path = tmp_path / "s.safetensors"
    ckpt.save_tree(path, {"w": torch.ones(100)}, {"step": 1})
    assert ckpt.verify_file(path) is None
    path.write_bytes(damage(path.read_bytes()))
    assert problem in ckpt.verify_file(path)


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0:
        return False
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
        ).returncode
        == 0
    )


def test_disk_full_on_a_real_small_file_system(data, tmp_path):
    """A real ENOSPC: the run lives on an 8 MiB tmpfs, which is then filled; the next save fails with one line and
    the checkpoint before it still resumes."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "8m"):
        pytest.skip("cannot mount a tmpfs here (needs root); the patched-writer test covers the same path")
    try:
        run = disk / "run"
        _train(data, run, "--max-steps", "2", "--set", "train.sample_every=0")
        before = state_tensors(run)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 4096))  # leave 4 KiB: less than one state file
        out = cli("train", "--resume", run, "--max-steps", "4")
        assert out.returncode == 2, out.stdout + out.stderr
        line = one_line_error(out)
        assert "could not write" in line and "no space left on the device" in line and "saved before is intact" in line
        after = state_tensors(run)
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not list((run / "checkpoints").glob(".*.tmp"))
        (disk / "filler").unlink()
        out = cli("train", "--resume", run, "--max-steps", "4")
        assert out.returncode == 0, out.stderr
    finally:  # lazily: a writer of this process (TensorBoard's) may still hold a file there
        subprocess.run(["umount", "--lazy", str(disk)], capture_output=True, check=False)
