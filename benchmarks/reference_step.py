"""Drive the reference implementation's own CycleGAN training step, for side-by-side timing.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, a copy in ../shared/reference/, see its README.md)
is imported from its folder at run time, never copied: `CycleGANModel(opt)` with the options its
constructor reads, then per iteration `set_input` and `optimize_parameters`, its own training step
(generator phase, then both discriminators, with its image pools and Adam), exactly as its train.py
runs it, minus the data loader.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

CPU = torch.device("cpu")


def reference_options(
    *, generator: str, ngf: int = 64, ndf: int = 64, identity: bool = True, device: torch.device = CPU
) -> SimpleNamespace:
    """The reference's training defaults (its options/train_options.py and base_options.py)."""
    return SimpleNamespace(
        isTrain=True,
        checkpoints_dir=tempfile.gettempdir(),
        name="benchmark",
        device=device,
        preprocess="resize_and_crop",
        input_nc=3,
        output_nc=3,
        ngf=ngf,
        ndf=ndf,
        netG=generator,
        netD="basic",
        n_layers_D=3,
        norm="instance",
        no_dropout=True,
        init_type="normal",
        init_gain=0.02,
        lambda_identity=0.5 if identity else 0.0,
        lambda_A=10.0,
        lambda_B=10.0,
        pool_size=50,
        gan_mode="lsgan",
        lr=0.0002,
        beta1=0.5,
        direction="AtoB",
        gpu_ids=[],
    )


class ReferenceStep:
    """The reference's CycleGANModel on `device`, seeded, its networks initialised as its `setup` does."""

    def __init__(
        self,
        root: str | Path,
        *,
        generator: str,
        ngf: int = 64,
        ndf: int = 64,
        identity: bool = True,
        device: torch.device = CPU,
        seed: int = 0,
    ):
        root = Path(root).resolve()
        if not (root / "models" / "cycle_gan_model.py").is_file():
            raise SystemExit(
                f"--reference {root}: models/cycle_gan_model.py not found (use ../shared/reference/upstream-2a7afba)"
            )
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        cudnn = torch.backends.cudnn.benchmark
        from models import networks  # the reference's own modules
        from models.cycle_gan_model import CycleGANModel

        torch.manual_seed(seed)
        self.opt = reference_options(generator=generator, ngf=ngf, ndf=ndf, identity=identity, device=device)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per network initialised
            self.model = CycleGANModel(self.opt)
            for name in self.model.model_names:
                net = networks.init_net(getattr(self.model, "net" + name), self.opt.init_type, self.opt.init_gain)
                setattr(self.model, "net" + name, net.to(device))
        torch.backends.cudnn.benchmark = cudnn  # its constructor sets it globally; keep the benchmark's choice

    def __call__(self, batch: dict) -> dict[str, float]:
        """One training iteration on batch {"A", "B"}; its loss terms (read after the step, as its loop does)."""
        self.model.set_input({"A": batch["A"], "B": batch["B"], "A_paths": [""], "B_paths": [""]})
        self.model.optimize_parameters()
        return {}

    def losses(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.model.get_current_losses().items()}

    def tensors(self) -> list[torch.Tensor]:
        """Parameters, gradients, Adam moments and pooled images (for the memory column)."""
        m = self.model
        nets = [getattr(m, "net" + n) for n in m.model_names]
        out = [t for net in nets for p in net.parameters() for t in (p, p.grad)]
        out += [
            v for opt in m.optimizers for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)
        ]
        out += [im for pool in (m.fake_A_pool, m.fake_B_pool) for im in pool.images]
        return out
