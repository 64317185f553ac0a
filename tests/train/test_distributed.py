"""Data-parallel training: 2 processes on the CPU with Gloo, spawned here, bounded in time.

- one step from the same weights: both ranks hold the same weights and gradients, equal to one
  process stepping on the union of the two ranks' batches (float32 rounding);
- a 2-process run saved and resumed continues bit-identically, every rank's RNG and pools included;
- only rank 0 writes files (an audit hook records every write each rank attempts).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from conftest import flat_tensors, write_images
from cyclegan.checkpoint import load_tree
from cyclegan.config import build_config
from cyclegan.distributed import (
    DistContext,
    any_rank,
    local_batchnorm,
    mean_over_ranks,
    prepare_nets,
    rank_part,
    rank_seed,
    saved_world_size,
    select_rank_state,
)
from cyclegan.train import create_state, train

TIMEOUT_S = 120
TINY = [
    "model.generator=resnet_6blocks",
    "model.ngf=8",
    "model.ndf=8",
    "data.load_size=36",
    "data.crop_size=32",
    "data.workers=0",
    "optim.n_epochs=1",
    "optim.n_epochs_decay=1",
    "train.progress=false",
    "train.log_every=2",
    "train.sample_every=3",
    "train.save_every_epochs=1",
    "train.device=cpu",
    "train.precision=fp32",
]


# --- running ranks -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(job: str, tmp: Path, world: int = 2) -> None:
    """Run `_worker(rank, ...)` in `world` new processes; fail after TIMEOUT_S (and kill them).

    Forked, so the ranks start in a second instead of importing torch again; spawned where this
    process has initialised CUDA, which a forked child cannot use."""
    method = "spawn" if torch.cuda.is_initialized() else "fork"
    with contextlib.suppress(ImportError):
        importlib.import_module("torch.utils.tensorboard")  # slow to import: once here, inherited by the ranks
    ctx = mp.start_processes(
        _worker, args=(world, _free_port(), job, str(tmp)), nprocs=world, join=False, start_method=method
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"{world} ranks did not finish {job!r} within {TIMEOUT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


def _worker(rank: int, world: int, port: int, job: str, tmp: str) -> None:
    """One rank: the environment torchrun would set, then the job, inside DistContext."""
    torch.set_num_threads(1)
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    tmp = Path(tmp)
    writes = _WriteRecorder(tmp)
    with DistContext.from_env("cpu") as dist:
        assert (dist.rank, dist.world_size, dist.initialized) == (rank, world, True)
        if job == "one_step":
            _job_one_step(dist, tmp, writes)
        elif job == "measured_precision":
            _job_measured_precision(dist, tmp)
        elif job == "abandoned_evaluation":
            _job_abandoned_evaluation(dist, tmp)
        else:
            _job_resume(dist, tmp, writes)
    (tmp / f"writes_rank{rank}.json").write_text(json.dumps(writes.events))


class _WriteRecorder:
    """Records file writes, directory creations, renames and removals under `root` while `on`."""

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def __init__(self, root: Path):
        self.root, self.on, self.events = str(root), False, []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args) -> None:
        if not self.on:
            return
        if event == "open":
            path, mode, flags = args
            if not ((mode and any(c in mode for c in "wax+")) or (flags or 0) & self.WRITE_FLAGS):
                return
        elif event not in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "tempfile.mkstemp", "shutil.copyfile"):
            return
        for path in args:  # a rename names both ends
            if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(self.root):
                self.events.append([event, os.fsdecode(path)])


def _config(data: Path, *extra: str):
    # one call per pass: a batch of 4 in one process must equal two ranks' batches of 2 to the summation order,
    # and fusing (methods/fused.py) would change the batches' sizes differently on each side
    return build_config([], [], TINY + [f"data.root={data}", "train.fuse_passes=false", *extra])


def _job_one_step(dist: DistContext, tmp: Path, writes: _WriteRecorder) -> None:
    cfg = _config(tmp / "data", "loss.pool_size=0", "train.batch_size=2", "train.max_steps=1")
    writes.on = True
    result = train(cfg, tmp / "dist_run", rank=dist.rank, world_size=dist.world_size, reduce_grads=dist.reduce_grads)
    writes.on = False
    _save_nets(result.state.nets, tmp / f"one_step_rank{dist.rank}.pt")
    # prepare_nets: weights from rank 0 whatever each rank built; batch norm -> SyncBatchNorm for a CUDA
    # device (its forward needs a GPU, the bookkeeping does not), and local_batchnorm gives it a group
    # of size 1 (rank 0) or -1 (non-member), where SyncBatchNorm falls back to plain batch norm.
    torch.manual_seed(100 + dist.rank)
    nets = nn.ModuleDict({"n": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))})
    prepare_nets(nets, torch.device("cuda"))
    bn = nets["n"][1]
    with local_batchnorm(nets):
        local_size = torch.distributed.get_world_size(bn.process_group)
    torch.save(
        {
            "weights": nets.state_dict(),
            "sync": isinstance(bn, nn.SyncBatchNorm),
            "local_size": local_size,
            "restored": bn.process_group is None,
        },
        tmp / f"prepare_rank{dist.rank}.pt",
    )


def _job_resume(dist: DistContext, tmp: Path, writes: _WriteRecorder) -> None:
    # pools of 2 fill after 2 steps, then swap at random; dropout draws from the global RNG; the moving
    # averages of the generators are saved and restored too
    extra = ("loss.pool_size=2", "model.dropout=true", "loss.lambda_identity=0.5", "optim.ema_decay=0.9")
    kw = dict(rank=dist.rank, world_size=dist.world_size, reduce_grads=dist.reduce_grads)
    writes.on = True
    full = train(_config(tmp / "data", *extra, "train.max_steps=6"), tmp / "full", **kw)
    train(_config(tmp / "data", *extra, "train.max_steps=3"), tmp / "part", **kw)
    resumed = train(_config(tmp / "data", *extra, "train.max_steps=6"), tmp / "part", resume=True, **kw)
    writes.on = False
    assert full.state.step == resumed.state.step == 6 and full.state.epoch == resumed.state.epoch == 1
    _save_nets(full.state.nets, tmp / f"full_rank{dist.rank}.pt")
    _save_nets(resumed.state.nets, tmp / f"resumed_rank{dist.rank}.pt")
    torch.save({k: p.state_dict()["images"] for k, p in resumed.state.pools.items()}, tmp / f"pools_rank{dist.rank}.pt")


def _job_measured_precision(dist: DistContext, tmp: Path) -> None:
    """An AVX512-BF16 CPU whose bf16 probe comes out fast on rank 0 and slow on rank 1: both take rank 0's choice."""
    from cyclegan import runtime

    runtime.native_cpu_bf16 = lambda: "AVX512-BF16"
    runtime.cpu_avx512 = lambda: True
    runtime.cpu_bf16_speedup = lambda: 2.0 if dist.rank == 0 else 0.5
    runtime.resolve_precision.cache_clear()
    cfg = _config(tmp / "data", "loss.pool_size=0", "train.max_steps=1", "train.precision=auto")
    result = train(cfg, tmp / "run", rank=dist.rank, world_size=dist.world_size, reduce_grads=dist.reduce_grads)
    own = runtime.resolve_precision("auto", "cpu")
    chosen = (result.state.cfg.train.precision, result.state.channels_last, own)
    (tmp / f"precision_rank{dist.rank}.json").write_text(json.dumps(chosen))


class _Recording:
    """An evaluation hook (rank 0's) that writes down the epochs it evaluated."""

    def __init__(self, path: Path):
        self.path = path

    def epoch_end(self, state, run_dir) -> None:
        with open(self.path, "a") as f:
            f.write(f"{state.epoch}\n")


class _Signalled:
    """SIGTERM to rank 0 a moment into its evaluation, which would last longer than any grace period."""

    def epoch_end(self, state, run_dir) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        raise AssertionError("the stop signal did not end the evaluation")


def _job_abandoned_evaluation(dist: DistContext, tmp: Path) -> None:
    """Rank 0 abandons its evaluation on a stop signal; rank 1, which got none, learns it and stops at the same
    point (not in the next step's all-reduce, which rank 0 never joins); both resume and evaluate that epoch first."""
    cfg = _config(tmp / "data", "loss.pool_size=0", "train.eval_every_epochs=1")
    kw = dict(rank=dist.rank, world_size=dist.world_size, reduce_grads=dist.reduce_grads)
    stopped = train(cfg, tmp / "run", hooks=_Signalled() if dist.rank == 0 else None, **kw)
    pending = load_tree(tmp / "run" / "checkpoints" / "latest.state.safetensors")[0]["progress"]["eval_pending"]
    resumed = train(
        cfg, tmp / "run", resume=True, hooks=_Recording(tmp / "evaluated.txt") if dist.rank == 0 else None, **kw
    )
    seen = (stopped.stopped_early, stopped.preempted, stopped.state.step, bool(pending), resumed.state.step)
    (tmp / f"abandoned_rank{dist.rank}.json").write_text(json.dumps(seen))
    _save_nets(resumed.state.nets, tmp / f"abandoned_rank{dist.rank}.pt")


def _save_nets(nets, path: Path) -> None:
    torch.save(
        {
            "weights": {k: v.clone() for k, v in nets.state_dict().items()},
            "grads": {k: p.grad.clone() for k, p in nets.named_parameters() if p.grad is not None},
        },
        path,
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_images(tmp_path / "data" / "trainA", 8, seed=1)
    write_images(tmp_path / "data" / "trainB", 7, seed=2)
    return tmp_path / "data"


# --- 2 processes ---------------------------------------------------------------------------------


def test_one_step_equals_single_process_on_union_batch(data, tmp_path):
    _spawn("one_step", tmp_path)
    r0, r1 = (torch.load(tmp_path / f"one_step_rank{r}.pt") for r in (0, 1))
    for kind in ("weights", "grads"):
        assert r0[kind].keys() == r1[kind].keys()
        for k in r0[kind]:
            assert torch.equal(r0[kind][k], r1[kind][k]), f"ranks disagree on {kind} {k}"
    # Rank r trained on the sampler's shard order[r::2][:2]; one process with batch 4 takes order[:4],
    # the same 4 samples. Batch-mean losses: the mean of the ranks' gradients is the union's gradient.
    single = train(_config(data, "loss.pool_size=0", "train.batch_size=4", "train.max_steps=1"), tmp_path / "single")
    nets, lr = single.state.nets, single.state.cfg.optim.lr
    grads = {k: p.grad for k, p in nets.named_parameters() if p.grad is not None}
    assert grads.keys() == r0["grads"].keys() and len(grads) > 0  # both phases' gradients are kept
    weights = nets.state_dict()
    compared = total = 0
    for name in nets:
        own = [k for k in grads if k.startswith(name + ".")]
        scale = max(grads[k].abs().max().item() for k in own)  # this network's gradient scale
        for k in own:
            g = grads[k]
            torch.testing.assert_close(r0["grads"][k], g, rtol=1e-4, atol=1e-6 * scale, msg=f"gradient of {k}")
            # Adam's first step is ~lr * sign(g): where g is rounding noise (biases before instance norm,
            # whose exact gradient is 0), noise flips the sign; elsewhere the step agrees to rounding.
            signal = g.abs() > 1e-4 * scale
            torch.testing.assert_close(
                r0["weights"][k][signal], weights[k][signal], rtol=1e-5, atol=1e-6, msg=f"weight {k}"
            )
            assert (r0["weights"][k] - weights[k]).abs().max() <= 2.001 * lr
            compared, total = compared + int(signal.sum()), total + g.numel()
    assert compared > 0.9 * total, f"only {compared} of {total} weights had a gradient above rounding noise"
    writes = [json.loads((tmp_path / f"writes_rank{r}.json").read_text()) for r in (0, 1)]
    assert writes[0] and not writes[1], f"rank 1 wrote: {writes[1][:5]}"
    p0, p1 = (torch.load(tmp_path / f"prepare_rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(v, p1["weights"][k]) for k, v in p0["weights"].items())
    assert p0["sync"] and p1["sync"] and p0["restored"] and p1["restored"]
    assert (p0["local_size"], p1["local_size"]) == (1, -1)


def test_resume_under_two_processes_is_bit_identical_and_only_rank0_writes(data, tmp_path):
    _spawn("resume", tmp_path)
    full, _ = load_tree(tmp_path / "full" / "checkpoints" / "latest.state.safetensors")
    resumed, _ = load_tree(tmp_path / "part" / "checkpoints" / "latest.state.safetensors")
    assert full["progress"] == resumed["progress"] and full["progress"]["step"] == 6
    assert saved_world_size(full) == 2 and set(full["ranks"]) == {"1"}
    assert set(full["ema"]) == {"G_A", "G_B"}
    a, b = dict(flat_tensors(full)), dict(flat_tensors(resumed))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"resumed run differs at {k}"
    # Rank 1's streams are its own and were restored exactly: its pools differ from rank 0's.
    assert not torch.equal(full["rng"]["cpu"], full["ranks"]["1"]["rng"]["cpu"])
    assert not torch.equal(full["pools"]["D_A"]["generator"], full["ranks"]["1"]["pools"]["D_A"]["generator"])
    assert not torch.equal(full["pools"]["D_A"]["images"], full["ranks"]["1"]["pools"]["D_A"]["images"])
    # Both ranks end with the same weights, in the straight and the resumed run; the file holds rank 1's pools.
    finals = {
        (run, r): torch.load(tmp_path / f"{run}_rank{r}.pt")["weights"] for run in ("full", "resumed") for r in (0, 1)
    }
    for k, w in finals["full", 0].items():
        assert all(torch.equal(w, finals[key][k]) for key in finals), f"weights differ across ranks/runs at {k}"
    pools1 = torch.load(tmp_path / "pools_rank1.pt")
    assert all(torch.equal(pools1[k], full["ranks"]["1"]["pools"][k]["images"]) for k in pools1)
    # Only rank 0 wrote: checkpoints, config, logs, samples; rank 1 nothing at all under tmp_path.
    writes = [json.loads((tmp_path / f"writes_rank{r}.json").read_text()) for r in (0, 1)]
    assert not writes[1], f"rank 1 wrote: {writes[1][:5]}"
    written = {Path(p).name for _, p in writes[0]}
    assert {"config.json", "log.jsonl", "latest.state.safetensors", "latest.model.safetensors"} <= written
    assert (tmp_path / "full" / "samples" / "step_0000003.png").is_file()


def test_a_stop_signal_on_rank_0_during_its_evaluation_stops_every_rank(data, tmp_path):
    _spawn("abandoned_evaluation", tmp_path)
    seen = [json.loads((tmp_path / f"abandoned_rank{r}.json").read_text()) for r in (0, 1)]
    # 8 images over 2 ranks, batch 1: 4 steps an epoch; stopped after epoch 1 with its evaluation pending
    assert seen == [[True, True, 4, True, 8], [True, False, 4, True, 8]]
    assert (tmp_path / "evaluated.txt").read_text() == "1\n2\n"  # the abandoned one first, once, then epoch 2
    w0, w1 = (torch.load(tmp_path / f"abandoned_rank{r}.pt")["weights"] for r in (0, 1))
    assert all(torch.equal(v, w1[k]) for k, v in w0.items())


# --- one process ---------------------------------------------------------------------------------


def test_a_measured_precision_is_rank_0s_on_every_rank(data, tmp_path):
    _spawn("measured_precision", tmp_path)
    chosen = [json.loads((tmp_path / f"precision_rank{r}.json").read_text()) for r in (0, 1)]
    assert chosen == [["bf16", False, "bf16"], ["bf16", False, "fp32"]]  # rank 1 measured fp32, trained in bf16


def test_rank_streams_differ_but_weights_do_not(data):
    cfg = _config(data, "loss.pool_size=4")
    s0 = create_state(cfg, torch.device("cpu"), 0)
    rng0 = torch.get_rng_state()
    s1 = create_state(cfg, torch.device("cpu"), 1)
    rng1 = torch.get_rng_state()
    single = create_state(cfg, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng0)  # rank 0 is exactly a single process
    assert not torch.equal(rng0, rng1)
    for k, w in s0.nets.state_dict().items():
        assert torch.equal(w, s1.nets.state_dict()[k]) and torch.equal(w, single.nets.state_dict()[k])
    for name in s0.pools:
        g0, g1 = s0.pools[name].generator.get_state(), s1.pools[name].generator.get_state()
        assert torch.equal(g0, single.pools[name].generator.get_state()) and not torch.equal(g0, g1)
    assert len({s.pools[n].generator.initial_seed() for s in (s0, s1) for n in s.pools}) == 4


def test_rank_seed():
    assert rank_seed(7, 0, "pool") == 7
    seeds = {rank_seed(s, r, stream) for s in (0, 1) for r in (1, 2, 3) for stream in ("pool", "torch")}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(5, 3, "pool") == rank_seed(5, 3, "pool")


def test_select_rank_state():
    def part(tag):
        return {"rng": {"cpu": torch.tensor([tag])}, "pools": {"D_A": tag}, "skipped_images": tag}

    tree = {
        "nets": "N",
        "rng": {"cpu": torch.tensor([0])},
        "pools": {"D_A": 0},
        "progress": {"step": 5, "skipped_images": 0},
        "world_size": 2,
        "ranks": {"1": part(1)},
    }
    assert select_rank_state(tree, 0, part(9)) == {k: tree[k] for k in ("nets", "rng", "pools", "progress")}
    one = select_rank_state(tree, 1, part(9))
    assert one["pools"] == {"D_A": 1} and one["progress"] == {"step": 5, "skipped_images": 1} and "ranks" not in one
    assert select_rank_state(tree, 2, part(9))["pools"] == {"D_A": 9}  # not in the file: fresh streams
    assert saved_world_size(tree) == 2 and saved_world_size({"nets": 0}) == 1
    assert (
        rank_part({"rng": {"cpu": torch.tensor([3])}, "pools": {}, "progress": {"skipped_images": 2}})["skipped_images"]
        == 2
    )


def test_single_process_context_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with DistContext.from_env("cpu") as dist:
        assert (dist.rank, dist.world_size, dist.is_main, dist.reduce_grads) == (0, 1, True, None)
    assert any_rank(True, False) == (True, False)
    assert mean_over_ranks({"G": torch.tensor(3.0)}, 2) == {"G": 1.5}


def test_device_pinned_under_torchrun_is_refused(monkeypatch):
    from cyclegan.errors import UserError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(UserError, match="one GPU"):
        DistContext.from_env("cuda:0")


def test_sync_batchnorm_conversion_keeps_parameters():
    """What prepare_nets does on CUDA: same Parameter objects (the optimizers keep them), same keys."""
    cfg = build_config([], [], TINY + ["model.norm=batch"])
    state = create_state(cfg, torch.device("cpu"))
    keys = state.nets.state_dict().keys()
    params = [id(p) for p in state.nets.parameters()]
    nets = nn.SyncBatchNorm.convert_sync_batchnorm(state.nets)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in nets.modules())
    assert not any(type(m) is nn.BatchNorm2d for m in nets.modules())
    assert [id(p) for p in nets.parameters()] == params and nets.state_dict().keys() == keys
    assert {id(p) for g in state.opt_g.param_groups for p in g["params"]} <= set(params)


def test_python_dash_m_cyclegan_runs_the_cli(monkeypatch, capsys):
    """`python -m cyclegan` (how torchrun -m starts it) is the CLI; runpy is what -m uses."""
    monkeypatch.setattr(sys, "argv", ["cyclegan", "train", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("cyclegan", run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0 and "per process" in capsys.readouterr().out
