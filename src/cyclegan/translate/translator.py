"""The inference snapshot as a function: a Translator built from any checkpoint, at any image size.

Images are padded (reflection) up to the generator's size multiple, translated, and cropped back, so the output
has the input's exact size and aspect ratio. Nothing here imports training code."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image

from .. import checkpoint as ckpt
from ..config import Config
from ..data.files import pil_to_uint8
from ..data.transforms import pad_amounts, to_float, to_uint8
from ..errors import UserError
from ..methods import NetSpec, create_method
from ..nets import size_multiple
from ..tiled import auto_tile, tiled_forward, tiling_problem


@dataclass
class Translator:
    """A loaded generator (or a method's translation pipeline) for one direction."""

    fn: Callable[[torch.Tensor], torch.Tensor]  # (B, in_ch, H, W) [-1, 1] -> (B, out_ch, H, W)
    in_ch: int
    out_ch: int
    multiple: int
    device: torch.device
    description: str = ""
    min_size: int = 8  # smallest side the network accepts (ResNet: 2x2 at the bottleneck for its reflection pads)
    per_image: bool = False  # batch statistics in use (train-mode batch norm): batching would mix images
    autocast: torch.dtype | None = None  # run the network under autocast in this dtype (bf16/fp16), else fp32
    tile: int = 0  # translate images larger than this in tiles, with whole-image statistics (cyclegan.tiled)
    direction: str = ""  # AtoB or BtoA for a trained model's translator ("" for a reference generator file)
    channels_last: bool = False  # the networks are NHWC, and so is what they are given (runtime.resolve_channels_last)
    nets: torch.nn.Module | None = None  # the modules `fn` runs (to move or convert them)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) uint8 -> (B, out_ch, H, W) uint8, same H, W."""
        return to_uint8(self.translate_float(to_float(images.to(self.device))))

    def image(self, image: Image.Image) -> Image.Image:
        """A PIL image translated at its own size (converted to the generator's channels first, as files are)."""
        if self.out_ch not in (1, 3, 4):
            raise UserError(
                f"{self.description}: {self.out_ch} output channels are no image; call the translator on a tensor"
            )
        out = self(pil_to_uint8(image, self.in_ch)[None])[0].permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out)

    @torch.no_grad()
    def translate_float(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) float in [-1, 1] -> (B, out_ch, H, W) float32, same H, W (what the ONNX export computes)."""
        h, w = x.shape[-2:]
        top, bottom, left, right, mode = pad_amounts(h, w, self.multiple, self.min_size)
        if bottom or right:
            x = F.pad(x, (left, right, top, bottom), mode=mode)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with ctx:
            tile = self.tile or auto_tile(self.fn, *x.shape[-2:])  # large images: tiles even without --tile
            y = tiled_forward(self.fn, x, tile) if tile and max(x.shape[-2:]) > tile else self.fn(x)
        return y.float()[..., top : top + h, left : left + w]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Random draws inside from `seed` (the dropout of networks in train mode: the same outputs every run), with the
    caller's random state restored afterwards."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def _pick_device(device: str | torch.device | None) -> torch.device:
    """--device -> a usable torch.device, checked before any checkpoint is read (so that a missing GPU is
    not reported as a broken checkpoint)."""
    from ..runtime import resolve_device

    return resolve_device(str(device or "auto"))


def load_translator(
    checkpoint: str | Path,
    direction: str | None = "AtoB",
    device=None,
    *,
    train_mode: bool | None = None,
    netG: str | None = None,
    precision: str = "fp32",
    tile: int = 0,
    **net_kwargs,
) -> Translator:
    """Load a translator from a run directory, a `.model.safetensors`/`.state.safetensors` file, or a
    reference `.pth` generator state dict (architecture inferred or given by netG/net_kwargs).

    train_mode: run the networks in train mode (dropout on, batch statistics), as the reference's
    test.py does without --eval; None uses the method's default.
    precision: fp32 | bf16 | fp16 | auto (bf16 where the device runs it natively): autocast for the forward
    pass; outputs are rounded to 8 bits either way (docs/performance.md has the speed and the differences).
    The networks run in channels_last where training would (runtime.resolve_channels_last: bf16 on AMX CPUs,
    bf16/fp16 on CUDA, auto's float32 on CPUs), and auto's float32 on a CPU computes the residual blocks'
    convolutions by Winograd F(4x4, 3x3) as training does (1.7-1.9x at 256-512 pixels on an AVX2 CPU, within
    0.002 of an 8-bit level before rounding); an explicit fp32 keeps the reference's layout and convolutions.
    tile: translate images larger than tile x tile pixels (a multiple of 4) in tiles, with the same result
    in less memory (ResNet generators; cyclegan.tiled); 0 translates every image in one piece.
    """
    from ..nets.winograd import use_winograd
    from ..runtime import AUTOCAST, resolve_channels_last, resolve_precision, resolve_winograd

    device = _pick_device(device)
    dtype = AUTOCAST[resolve_precision(precision, device.type, option="precision")]
    if tile and (tile < 4 or tile % 4):
        raise UserError(f"--tile {tile}: give a positive multiple of 4 (e.g. 512)")
    translator = _load(checkpoint, direction, device, train_mode, netG, **net_kwargs)
    translator.autocast = dtype
    # as training's auto: float32 on a CPU without fast bf16 runs the residual convolutions by Winograd, in NHWC
    if translator.nets is not None and resolve_channels_last("auto", device.type, precision, winograd="auto"):
        translator.nets.to(memory_format=torch.channels_last)
        translator.channels_last = True
    if translator.nets is not None and resolve_winograd("auto", device.type, precision):
        use_winograd(translator.nets, keep_filters=True)  # transformed once, not per image or tile
    if tile:
        problem = tiling_problem(translator.fn)
        if problem:
            raise UserError(f"--tile: {checkpoint} cannot be translated in tiles: {problem}")
        translator.tile = tile
    return translator


def _load(checkpoint, direction, device, train_mode, netG, **net_kwargs) -> Translator:
    path = Path(checkpoint)
    if path.suffix in (".pth", ".pt"):
        from ..reference import load_reference_generator

        net = load_reference_generator(path, netG, **net_kwargs).to(device)
        net.train(bool(train_mode)) if train_mode is not None else net.eval()
        first = next(net.parameters())
        return Translator(
            net,
            first.shape[1],
            _out_channels(net),
            size_multiple(net),
            device,
            f"reference {path.name}",
            per_image=_uses_batch_stats(net),
            nets=net,
        )
    path = ckpt.resolve_checkpoint(path, "model")
    tree, meta = ckpt.load_model(path, device)
    cfg = Config.from_dict(meta["config"])
    method = create_method(cfg)
    if direction is None:  # the model's own direction when it translates one way (pix2pix), else AtoB
        direction = next(iter(meta["directions"])) if len(meta["directions"]) == 1 else "AtoB"
    if direction not in meta["directions"]:
        raise UserError(
            f"{path}: this {meta['method']} model translates {', '.join(meta['directions'])}, not {direction}"
        )
    nets = torch.nn.ModuleDict({k: NetSpec.from_dict(s).build() for k, s in meta["specs"].items()})
    for k, net in nets.items():
        try:
            net.load_state_dict(tree[k])
        except RuntimeError as e:
            raise UserError(
                f"{path}: weights of {k} do not fit its recorded architecture ({str(e).splitlines()[0]})"
            ) from None
    nets.to(device)
    mode = getattr(method, "test_train_mode", False) if train_mode is None else train_mode
    nets.train(mode)
    fn = method.translator(nets, direction)
    spec = meta["specs"][meta["directions"][direction]]
    net = nets[meta["directions"][direction]]
    desc = f"{meta['method']} {direction} ({spec['name']}, step {meta.get('step')}, epoch {meta.get('epoch')})"
    in_ch, out_ch = method.io_channels(direction)
    return Translator(
        fn,
        in_ch,
        out_ch,
        size_multiple(net),
        device,
        desc,
        per_image=_uses_batch_stats(nets),
        direction=direction,
        nets=nets,
    )


def _uses_batch_stats(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in net.modules())


def _out_channels(net: torch.nn.Module) -> int:
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    last = convs[-1]
    return last.out_channels
