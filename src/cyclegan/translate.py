"""Inference: translate image files and folders at their own size, with any trained checkpoint.

Images are padded (reflection) up to the generator's size multiple, translated, and cropped back, so
the output has the input's exact size and aspect ratio; `size` resizes instead (shorter side, or WxH).
"""

from __future__ import annotations

import contextlib
import glob
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from . import checkpoint as ckpt
from .config import Config
from .data.files import ARRAY_EXTENSIONS, IMAGE_EXTENSIONS, ImageReadError, find_images, read_image
from .data.transforms import to_float, to_uint8
from .errors import UserError
from .methods import NetSpec, create_method
from .nets import size_multiple


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

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) uint8 -> (B, out_ch, H, W) uint8, same H, W."""
        h, w = images.shape[-2:]
        x = to_float(images.to(self.device))
        m = self.multiple
        ph, pw = max((-h) % m, self.min_size - h), max((-w) % m, self.min_size - w)
        if ph or pw:
            # reflect needs the pad smaller than the side; replicate covers tiny images
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        ctx = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with ctx:
            y = self.fn(x)
        y = y.float()[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w]
        return to_uint8(y)


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_translator(checkpoint: str | Path, direction: str = "AtoB", device=None, train_mode: bool | None = None,
                    netG: str | None = None, precision: str = "fp32", **net_kwargs) -> Translator:
    """Load a translator from a run directory, a `.model.safetensors`/`.state.safetensors` file, or a
    reference `.pth` generator state dict (architecture inferred or given by netG/net_kwargs).

    train_mode: run the networks in train mode (dropout on, batch statistics), as the reference's
    test.py does without --eval; None uses the method's default.
    precision: fp32 | bf16 | fp16 | auto (bf16 where the device runs it natively): autocast for the forward
    pass; outputs are rounded to 8 bits either way (docs/performance.md has the speed and the differences).
    """
    from .train.state import resolve_precision
    from .train.step import AUTOCAST

    device = _pick_device(device)
    dtype = AUTOCAST[resolve_precision(precision, device.type, option="precision")]
    translator = _load(checkpoint, direction, device, train_mode, netG, **net_kwargs)
    translator.autocast = dtype
    return translator


def _load(checkpoint, direction, device, train_mode, netG, **net_kwargs) -> Translator:
    path = Path(checkpoint)
    if path.suffix in (".pth", ".pt"):
        from .reference import load_reference_generator

        net = load_reference_generator(path, netG, **net_kwargs).to(device)
        net.train(bool(train_mode)) if train_mode is not None else net.eval()
        first = next(net.parameters())
        return Translator(net, first.shape[1], _out_channels(net), size_multiple(net), device, f"reference {path.name}",
                          per_image=_uses_batch_stats(net))
    path = ckpt.resolve_checkpoint(path, "model")
    tree, meta = ckpt.load_model(path, device)
    cfg = Config.from_dict(meta["config"])
    method = create_method(cfg)
    if direction not in meta["directions"]:
        raise UserError(f"{path}: this {meta['method']} model translates {', '.join(meta['directions'])}, not {direction}")
    nets = torch.nn.ModuleDict({k: NetSpec.from_dict(s).build() for k, s in meta["specs"].items()})
    for k, net in nets.items():
        try:
            net.load_state_dict(tree[k])
        except RuntimeError as e:
            raise UserError(f"{path}: weights of {k} do not fit its recorded architecture ({str(e).splitlines()[0]})") from None
    nets.to(device)
    mode = getattr(method, "test_train_mode", False) if train_mode is None else train_mode
    nets.train(mode)
    fn = method.translator(nets, direction)
    spec = meta["specs"][meta["directions"][direction]]
    net = nets[meta["directions"][direction]]
    desc = f"{meta['method']} {direction} ({spec['name']}, step {meta.get('step')}, epoch {meta.get('epoch')})"
    in_ch, out_ch = method.io_channels(direction)
    return Translator(fn, in_ch, out_ch, size_multiple(net), device, desc, per_image=_uses_batch_stats(nets))


def _uses_batch_stats(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in net.modules())


def _out_channels(net: torch.nn.Module) -> int:
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    last = convs[-1]
    return last.out_channels


def expand_inputs(inputs: Iterable[str]) -> list[tuple[Path, Path]]:
    """Files, folders (recursive) and globs -> [(file, name relative to its input root)]."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [(f, f.relative_to(p)) for f in find_images(p, "input")]
        elif p.is_file():
            found.append((p, Path(p.name)))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            files = [Path(m) for m in matches if Path(m).suffix.lower() in IMAGE_EXTENSIONS + ARRAY_EXTENSIONS]
            if not files:
                raise UserError(f"input {item}: no such file or folder, and no images match it as a pattern")
            found += [(f, Path(f.name)) for f in files]
    return found


def _resize(image: torch.Tensor, size: str | None) -> torch.Tensor:
    if not size:
        return image
    if "x" in size:
        w, h = (int(v) for v in size.lower().split("x"))
        return TF.resize(image, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.resize(image, int(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


def _batches(items, translator: Translator, size, batch_size) -> Iterator[tuple[list, torch.Tensor | None]]:
    """Group consecutive same-size images into batches; unreadable files come out alone with None."""
    group, shape = [], None
    for src, rel in items:
        try:
            image = _resize(read_image(src, translator.in_ch), size)
        except ImageReadError as e:
            if group:
                yield group, torch.stack([g[2] for g in group])
                group, shape = [], None
            yield [(src, rel, str(e))], None
            continue
        if group and (image.shape != shape or len(group) == batch_size):
            yield group, torch.stack([g[2] for g in group])
            group = []
        group.append((src, rel, image))
        shape = image.shape
    if group:
        yield group, torch.stack([g[2] for g in group])


def save_image(image: torch.Tensor, path: Path) -> None:
    """(C, H, W) uint8 -> file; the format follows the suffix; >4 channels are saved as .npy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c = image.shape[0]
    if c not in (1, 3, 4) or path.suffix == ".npy":
        import numpy as np

        np.save(path.with_suffix(".npy"), image.permute(1, 2, 0).cpu().numpy())
        return
    array = image.permute(1, 2, 0).cpu().numpy()
    Image.fromarray(array[:, :, 0] if c == 1 else array).save(path)


def translate_files(translator: Translator, inputs: Iterable[str], out_dir: str | Path, size: str | None = None,
                    batch_size: int = 1, keep_format: bool = False, gallery: bool = True, progress: bool = True) -> dict:
    """Translate every input into out_dir (same relative names, .png unless keep_format).

    Returns {"written": [(input, output)], "failed": [(input, reason)]}; writes out_dir/index.html.
    """
    out_dir = Path(out_dir)
    items = expand_inputs(inputs)
    if translator.per_image:  # as the reference's test.py (batch size 1): each image its own batch statistics
        batch_size = 1
    written, failed = [], []
    from .progress import progress_bar

    bar = progress_bar(total=len(items), unit="img", disable=not progress)
    for group, batch in _batches(items, translator, size, batch_size):
        if batch is None:
            failed.append((group[0][0], group[0][2]))
            bar.update(1)
            continue
        outputs = translator(batch)
        for (src, rel, _), out in zip(group, outputs):
            target = out_dir / (rel if keep_format and rel.suffix.lower() != ".npy" else rel.with_suffix(".png"))
            save_image(out, target)
            written.append((src, target))
        bar.update(len(group))
    bar.close()
    if gallery and written:
        write_gallery(out_dir / "index.html", written, title=translator.description)
    return {"written": written, "failed": failed}


def write_gallery(path: Path, pairs: list[tuple[Path, Path]], title: str = "", columns: tuple[str, ...] = ("input", "output"),
                  extra: list[list[Path]] | None = None) -> None:
    """An HTML page with one row per image: input | output (| more columns), every image listed."""
    rows = []
    for i, (src, dst) in enumerate(pairs):
        cells = [src, dst] + (list(extra[i]) if extra else [])
        tds = "".join(f'<td><img src="{html.escape(_rel(c, path.parent))}" loading="lazy"><br><small>{html.escape(Path(c).name)}</small></td>' for c in cells)
        rows.append(f"<tr>{tds}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title or 'cyclegan translations')}</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{text-align:center;vertical-align:top;padding:4px}}
img{{max-width:256px;max-height:256px;image-rendering:pixelated}}</style></head>
<body><h2>{html.escape(title)}</h2><p>{len(pairs)} images</p>
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), base.resolve())).as_posix()
