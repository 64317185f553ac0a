"""Fast paths (issue 5) against the plain float32 eager step: same weights, same batch, one step,
then the loss terms and every network's gradient are compared.

Tolerances are the issue's: relative error <= 1e-4 for paths that keep float32 arithmetic
(channels_last, compiled networks, Adam kernels), <= 2e-2 for bfloat16/float16 autocast. A gradient's
relative error is ||g_fast - g_plain|| / ||g_plain|| over all of one network's parameters.

One exception, measured and explained in docs/performance.md: the gradients of a freshly initialised
CycleGAN are sums of many terms of random sign (its outputs are not yet related to its targets), so
they cancel heavily and any rounding is amplified: storing only the *input images* in bfloat16 already
moves the float32 gradients by 15-30%, so no bfloat16 step can meet 2e-2 there. For bfloat16/float16
the losses are checked at 2e-2 and the gradients for direction and size (cosine >= 0.9, norm within
10%), which still catches a missing term, a wrong dtype or an unscaled gradient.

CUDA tests run whenever a GPU is present and are skipped otherwise.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from cyclegan import checkpoint as ckpt
from cyclegan.compiling import compile_networks
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.nets import winograd
from cyclegan.nets.winograd import WinogradConv2d
from cyclegan.runtime import adam_options, guard_channels_last, resolve_precision
from cyclegan.train import create_state, train_step

TINY = ["model.generator=resnet_6blocks", "model.ngf=8", "model.ndf=8", "train.seed=3"]
PLAIN = ["train.precision=fp32", "train.channels_last=false", "train.compile=false", "train.adam=forloop"]
NETS = ("G_A", "G_B", "D_A", "D_B")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def winograd_at_any_size(monkeypatch):
    """These networks' residual maps (8x8) are below winograd.MIN_TILES, where training runs the direct
    convolution; the Winograd tests here are about its arithmetic, so it runs at every size."""
    monkeypatch.setattr(winograd, "MIN_TILES", 0)


def make_batch(device="cpu", size=32, n=2, channels_last=False, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {k: (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device) for k in "AB"}
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    return batch


def run_step(overrides, device="cpu", backend=None, channels_last=False, n=2, dtype=torch.float32, noise=0.0):
    """One train_step from the seeded initial weights: (loss terms, {net: flat gradient}, state).
    dtype=float64 runs networks and batch in double precision (the losses stay float32); noise > 0
    multiplies the batch by (1 + noise * N(0, 1))."""
    device = torch.device(device)
    state = create_state(build_config([], [], TINY + PLAIN + overrides), device)
    state.nets.to(dtype)  # in place: the optimizers keep the same parameters
    if state.scaler is not None:  # fp16: these small networks' gradients x 2^16 (the default) overflow
        state.scaler = torch.amp.GradScaler(device.type, init_scale=2.0**8)  # and the step would be skipped
    if backend is not None:
        compile_networks(state.nets, device, backend=backend)
    batch = {k: v.to(dtype) for k, v in make_batch(device, channels_last=channels_last, n=n).items()}
    if noise:
        g = torch.Generator().manual_seed(99)
        batch = {
            k: v * (1 + noise * torch.randn(v.shape, generator=g, dtype=dtype).to(device)) for k, v in batch.items()
        }
    terms = train_step(state, batch)
    grads = {k: torch.cat([p.grad.float().flatten() for p in state.nets[k].parameters()]).cpu() for k in NETS}
    return {k: float(v) for k, v in terms.items()}, grads, state


def rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def assert_agree(fast, plain, tol, grad_tol=None):
    """Loss terms within tol; gradients within grad_tol ({net: bound}, default tol for every net)."""
    (t_fast, g_fast, _), (t_plain, g_plain, _) = fast, plain
    assert set(t_fast) == set(t_plain) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    term_errors = {k: rel(t_fast[k], t_plain[k]) for k in t_plain}
    grad_errors = {k: rel(g_fast[k], g_plain[k]) for k in NETS}
    bounds = grad_tol or {k: tol for k in NETS}
    assert max(term_errors.values()) <= tol, term_errors
    assert all(grad_errors[k] <= bounds[k] for k in NETS), (grad_errors, bounds)
    return term_errors, grad_errors


def assert_low_precision_agrees(fast, plain):
    assert_agree(fast, plain, 2e-2, {k: 1.0 for k in NETS})
    for k in NETS:
        g_fast, g_plain = fast[1][k].double(), plain[1][k].double()
        assert float(torch.nn.functional.cosine_similarity(g_fast, g_plain, 0)) >= 0.9, k
        assert abs(float(g_fast.norm() / g_plain.norm()) - 1) <= 0.1, k


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is faster, and far faster on a busy machine (no OpenMP barriers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def plain_cpu():
    return run_step([])


def test_plain_step_has_real_gradients(plain_cpu):
    _, grads, _ = plain_cpu
    assert all(torch.isfinite(g).all() and g.norm() > 0 for g in grads.values())


@pytest.fixture(scope="module")
def plain_cpu_f64():
    return run_step([], n=1, dtype=torch.float64)


def test_channels_last_matches_plain_fp32(plain_cpu):
    fast = run_step(["train.channels_last=true"], channels_last=True)
    assert fast[2].nets["G_A"].model[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert_agree(fast, plain_cpu, 1e-4)


def test_channels_last_gradients_are_exact_at_batch_one(plain_cpu_f64):
    """In float64 (no rounding to hide behind) and at batch 1, where PyTorch 2.14's instance-norm
    backward goes wrong on channels_last gradients: the state's guard must make them exact."""
    fast = run_step(["train.channels_last=true"], channels_last=True, n=1, dtype=torch.float64)
    assert_agree(fast, plain_cpu_f64, 1e-6, {k: 1e-9 for k in NETS})  # the losses are float32


@pytest.fixture(scope="module")
def float32_floor(plain_cpu):
    """Per network, how far the plain step's first gradients move when the batch is multiplied by
    (1 + 1e-5 N(0, 1)): a perturbation of the size of Winograd F(4x4, 3x3)'s float32 rounding (1e-5), amplified as
    the module docstring says (measured: G 2e-3 to 5e-3, D 3e-5; a 1e-7 perturbation moves them by 4e-6)."""
    moved = run_step([], noise=1e-5)[1]
    return {k: max(1e-4, rel(moved[k], plain_cpu[1][k])) for k in NETS}


@pytest.mark.parametrize("cl", [False, True])
def test_winograd_matches_plain_fp32(plain_cpu, float32_floor, cl):
    """Winograd residual convolutions (the float32 default where bf16 is not native) against the direct ones:
    losses within 1e-4, gradients no further than a 1e-5 perturbation of the images moves them (measured with
    the points 0, ±3/2, ±2/3: G 2e-4 to 1.1e-3 in NCHW but 5e-6 in channels_last, D 1e-6 to 2e-6; the first
    step's gradients amplify some perturbations far more than others). The float64 test below is the exact one."""
    overrides = ["train.winograd=true"] + ["train.channels_last=true"] * cl
    fast = run_step(overrides, channels_last=cl)
    assert sum(isinstance(m, WinogradConv2d) for m in fast[2].nets.modules()) == 2 * 2 * 6
    assert_agree(fast, plain_cpu, 1e-4, float32_floor)


def test_winograd_step_is_exact_in_float64(plain_cpu_f64):
    """The whole step in float64, where Winograd's algebra has no rounding to hide behind."""
    fast = run_step(["train.winograd=true"], n=1, dtype=torch.float64)
    assert_agree(fast, plain_cpu_f64, 1e-6, {k: 1e-9 for k in NETS})  # the losses are float32


def test_instance_norm_guard_gives_the_contiguous_gradient():
    norm = torch.nn.ModuleDict({"n": torch.nn.InstanceNorm2d(4)})
    x = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    grad = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    (expected,) = torch.autograd.grad(norm["n"](x), x, grad)
    guard_channels_last(norm, torch.device("cpu"))
    (got,) = torch.autograd.grad(torch.relu_(norm["n"](x)) + 0, x, grad.contiguous(memory_format=torch.channels_last))
    (expected_relu,) = torch.autograd.grad(torch.relu(norm["n"](x)), x, grad)
    assert torch.allclose(got, expected_relu, atol=1e-6)
    assert not torch.equal(expected, expected_relu)


def test_compiled_networks_match_plain(plain_cpu, plain_cpu_f64):
    # aot_eager runs the same capture (Dynamo + AOTAutograd) as inductor without C++ code generation,
    # so it stays fast; inductor itself is checked by benchmarks/train_step.py (docs/performance.md).
    fast = run_step([], backend="aot_eager")
    assert type(fast[2].nets["G_A"]).__name__ == "OptimizedModule"
    assert_agree(fast, plain_cpu, 1e-4)
    assert_agree(
        run_step([], backend="aot_eager", n=1, dtype=torch.float64), plain_cpu_f64, 1e-6, {k: 1e-9 for k in NETS}
    )
    # checkpoints carry the plain names (no `_orig_mod.` prefix)
    assert set(fast[2].state_dict()["nets"]["G_A"]) == set(plain_cpu[2].state_dict()["nets"]["G_A"])


def test_bf16_autocast_matches_plain(plain_cpu):
    fast = run_step(["train.precision=bf16"])
    assert_low_precision_agrees(fast, plain_cpu)
    assert rel(fast[1]["G_A"], plain_cpu[1]["G_A"]) > 1e-3  # it really ran in bfloat16


@pytest.mark.parametrize("adam", ["foreach", "fused"])
def test_fp16_with_grad_scaler_matches_plain(plain_cpu, adam):
    """float16 autocast with its grad scaler (a CUDA option; CPU autocast runs it too, so CI checks the
    scaler's use): gradients unscaled before Adam (the fused kernel unscales in place), and an
    overflowing first step skipped rather than applied."""
    fast = run_step(["train.precision=fp16", f"train.adam={adam}"])
    assert_low_precision_agrees(fast, plain_cpu)
    assert fast[2].scaler.get_scale() == 2.0**8  # no overflow at the test's initial scale, so no skip
    state = create_state(
        build_config([], [], TINY + PLAIN + ["train.precision=fp16", f"train.adam={adam}"]), torch.device("cpu")
    )
    before = [p.detach().clone() for p in state.nets.parameters()]
    train_step(state, make_batch())  # PyTorch's initial scale 2^16: these gradients overflow in float16
    assert state.scaler.get_scale() == 2.0**15  # backed off once ...
    assert all(torch.equal(a, p) for a, p in zip(before, state.nets.parameters()))  # ... and nothing was updated


def test_foreach_adam_is_bit_identical_to_forloop_and_fused_within_rounding():
    g = torch.Generator().manual_seed(0)
    shapes = [(64, 32, 3, 3), (64,), (1, 64, 4, 4), (1,)]
    start = [torch.randn(s, generator=g) for s in shapes]
    grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(3)]
    final = {}
    for impl in ("forloop", "foreach", "fused"):
        params = [p.clone().requires_grad_() for p in start]
        opt = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **adam_options(impl, torch.device("cpu")))
        for step_grads in grads:
            for p, gr in zip(params, step_grads):
                p.grad = gr.clone()
            opt.step()
        final[impl] = torch.cat([p.detach().flatten() for p in params])
    assert torch.equal(final["foreach"], final["forloop"])
    assert (
        rel(
            final["fused"] - torch.cat([p.flatten() for p in start]),
            final["forloop"] - torch.cat([p.flatten() for p in start]),
        )
        < 1e-5
    )


def test_adam_defaults_by_device():
    assert adam_options("auto", torch.device("cpu")) == {"foreach": True}
    assert adam_options("auto", torch.device("cpu"), "bf16") == {"fused": True}  # 3-4x less time than foreach
    assert adam_options("auto", torch.device("cuda")) == {"fused": True}
    cfg = build_config([], [], TINY + ["train.precision=bf16"])
    assert create_state(cfg, torch.device("cpu")).opt_g.param_groups[0]["fused"]
    with pytest.raises(UserError, match="train.adam"):
        adam_options("fast", torch.device("cpu"))


def test_auto_precision_is_bf16_only_where_native():
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert resolve_precision("fp16", "cpu") == "fp16"
    with pytest.raises(UserError, match="train.precision"):
        resolve_precision("int8", "cpu")


def test_compile_mode_is_checked():
    cfg = build_config([], [], TINY + ["train.compile=true", "train.compile_mode=fastest"])
    with pytest.raises(UserError, match="compile_mode"):
        create_state(cfg, torch.device("cpu"))


def test_compile_without_a_cxx_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    cfg = build_config([], [], TINY + ["train.compile=true"])
    with pytest.raises(UserError, match="C\\+\\+ compiler"):
        create_state(cfg, torch.device("cpu"))


@pytest.mark.parametrize(
    "precision,adam,n",
    [("bf16", "foreach", 2), ("bf16", "auto", 1), ("fp32", "foreach", 2)],  # auto: fused in bf16 on CPU; n=1: the
)  # pool keeps; fp32: with Winograd, the default where bf16 is not native
def test_resume_is_bit_identical_with_fast_paths(tmp_path, precision, adam, n):
    """bf16 (or fp32 + Winograd) + channels_last + foreach or fused Adam: stop after 2 steps, save, load into a fresh
    state, and the third step equals the uninterrupted run's bit for bit."""
    overrides = TINY + [f"train.precision={precision}", "train.channels_last=true", f"train.adam={adam}"]
    overrides += ["loss.pool_size=2", f"train.winograd={str(precision == 'fp32').lower()}"]
    batches = [make_batch(channels_last=True, seed=s, n=n) for s in range(3)]
    straight = create_state(build_config([], [], overrides), torch.device("cpu"))
    for b in batches[:2]:
        train_step(straight, b)
    ckpt.save_tree(tmp_path / "s.safetensors", straight.state_dict(), {})
    train_step(straight, batches[2])

    resumed = create_state(build_config([], [], overrides), torch.device("cpu"))
    tree, _ = ckpt.load_tree(tmp_path / "s.safetensors")
    resumed.load_state_dict(tree, torch.device("cpu"))
    assert resumed.step == 2
    train_step(resumed, batches[2])
    for a, b in zip(straight.nets.parameters(), resumed.nets.parameters()):
        assert torch.equal(a, b)


# ---- CUDA: run whenever a GPU is present ---------------------------------------------------------


@pytest.fixture(scope="module")
def strict_fp32_cuda():
    """Float32 convolutions without TF32 (PyTorch's default for cuDNN convs is TF32), restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def plain_cuda(strict_fp32_cuda):
    return run_step([], device="cuda")


@pytest.fixture(scope="module")
def cuda_floor(plain_cuda):
    """Per network, how far the plain CUDA path's own first-step gradients move when the batch is
    multiplied by (1 + 1e-6 noise), times two: another float32 kernel (cuDNN's NHWC ones, oneDNN's on
    the CPU) rounds by about that much, and the gradients at initialisation amplify it (module
    docstring); the float64 comparisons below are the exact ones."""
    moved = run_step([], device="cuda", noise=1e-6)[1]
    return {k: max(1e-4, 2 * rel(moved[k], plain_cuda[1][k])) for k in NETS}


@needs_cuda
@pytest.mark.cuda
def test_cuda_plain_matches_cpu(strict_fp32_cuda, plain_cuda, plain_cpu, plain_cpu_f64, cuda_floor):
    assert_agree(run_step([], device="cuda", n=1, dtype=torch.float64), plain_cpu_f64, 1e-6, {k: 1e-7 for k in NETS})
    assert_agree(plain_cuda, plain_cpu, 1e-4, cuda_floor)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize(
    "overrides,cl,tol",
    [
        (["train.adam=fused"], False, 1e-4),
        (["train.channels_last=true"], True, 1e-4),
        (["train.precision=bf16"], False, 2e-2),
        (["train.precision=fp16"], False, 2e-2),
        (["train.precision=bf16", "train.channels_last=true", "train.adam=fused"], True, 2e-2),
    ],
)
def test_cuda_fast_paths_match_plain(plain_cuda, cuda_floor, overrides, cl, tol):
    fast = run_step(overrides, device="cuda", channels_last=cl)
    assert_low_precision_agrees(fast, plain_cuda) if tol > 1e-4 else assert_agree(fast, plain_cuda, tol, cuda_floor)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_cuda_compiled_step_matches_plain(strict_fp32_cuda, mode):
    """torch.compile with inductor (Triton); reduce-overhead adds CUDA graphs. Three steps, so later
    steps replay the graphs recorded earlier; the first step's losses must agree to 1e-4, later ones
    (after Adam steps whose signs can differ on near-zero gradients) to 2e-2."""
    cfg = build_config([], [], TINY + PLAIN + ["train.compile=true", f"train.compile_mode={mode}", "train.adam=fused"])
    state = create_state(cfg, torch.device("cuda"))
    plain = create_state(build_config([], [], TINY + PLAIN + ["train.adam=fused"]), torch.device("cuda"))
    for s in range(3):
        batch = make_batch("cuda", seed=s)
        terms = {k: float(v) for k, v in train_step(state, batch).items()}
        ref = {k: float(v) for k, v in train_step(plain, batch).items()}
        assert max(rel(terms[k], ref[k]) for k in ref) <= (1e-4 if s == 0 else 2e-2), (s, terms, ref)
