"""Inference: translate image files and folders at their own size, with any trained checkpoint.

Images are padded (reflection) up to the generator's size multiple, translated, and cropped back, so
the output has the input's exact size and aspect ratio; `size` resizes instead (shorter side, or WxH).
Outputs never overwrite an input, and two inputs never write the same file: both are refused before
anything is written.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable, Iterator

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..data.files import ARRAY_EXTENSIONS, IMAGE_EXTENSIONS, ImageReadError, find_images, read_image
from ..errors import UserError, first_line
from ..runtime import reuse_freed_memory
from ..tiled import tiling_problem
from .gallery import write_gallery
from .translator import Translator, seeded


def expand_inputs(inputs: Iterable[str], out_dir: str | Path | None = None) -> list[tuple[Path, Path]]:
    """Files, folders (recursive) and globs -> [(file, name relative to its input root)].

    When out_dir lies inside a folder (or a glob's fixed leading folder), the images under out_dir are
    earlier translations, not inputs: they are left out (a named file is always an input).
    """
    out = Path(out_dir).resolve() if out_dir is not None else None
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files, root, what = find_images(p, "input"), p, "folder"
        elif p.is_file():
            found.append((p, Path(p.name)))
            continue
        else:
            matches = sorted(glob.glob(item, recursive=True))
            files = [
                Path(m)
                for m in matches
                if Path(m).suffix.lower() in IMAGE_EXTENSIONS + ARRAY_EXTENSIONS and Path(m).is_file()
            ]
            if not files:
                raise UserError(f"input {item}: no such file or folder, and no images match it as a pattern")
            root, what = _glob_root(item), "pattern"
        if out is not None and out == root.resolve() and what == "folder":
            raise UserError(
                f"--out {out_dir} is the input folder {item}; translations go into a folder of their own "
                f"(e.g. --out {Path(item) / 'translated'})"
            )
        if out is not None and out != root.resolve() and out.is_relative_to(root.resolve()):
            kept = [f for f in files if not f.resolve().is_relative_to(out)]
            if not kept:
                raise UserError(
                    f"input {item}: every image this {what} finds is under the output folder {out_dir} "
                    f"(earlier translations, which are not translated again); nothing to translate"
                )
            files = kept
        found += [(f, f.relative_to(p)) for f in files] if what == "folder" else [(f, Path(f.name)) for f in files]
    return found


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern searches: its leading components without wildcards."""
    root = []
    for part in Path(pattern).parts:
        if any(c in part for c in "*?["):
            break
        root.append(part)
    return Path(*root) if root else Path(".")


MAX_SIZE = 8192  # --size limit per side: a 3 x 8192 x 8192 image already needs tens of GB in a 64-channel generator


def parse_size(size: str | int | None) -> int | tuple[int, int] | None:
    """--size: None (each image's own size), "N" (shorter side N, aspect kept) or "WxH" -> None, N or (W, H)."""
    if size is None or size == "":
        return None
    text = str(size).strip().lower()
    parts = [part.strip() for part in text.split("x")]
    if len(parts) > 2 or not all(part.isascii() and part.isdigit() for part in parts):
        raise UserError(
            f"--size {size!r}: expected N (the shorter side, in pixels) or WxH, e.g. --size 256 or --size 512x384"
        )
    values = [int(part) for part in parts]
    if min(values) < 1:
        raise UserError(f"--size {size!r}: sizes must be at least 1 pixel")
    if max(values) > MAX_SIZE:
        raise UserError(
            f"--size {size!r}: at most {MAX_SIZE} pixels a side (omit --size to translate each image at its own size)"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])


def _resize(image: torch.Tensor, size: str | int | tuple[int, int] | None) -> torch.Tensor:
    size = parse_size(size) if isinstance(size, str) else size
    if not size:
        return image
    if isinstance(size, tuple):
        w, h = size
        return TF.resize(image, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return TF.resize(image, size, interpolation=InterpolationMode.BICUBIC, antialias=True)


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


OUTPUT_EXTENSIONS = IMAGE_EXTENSIONS + (".npy",)


def translate_files(
    translator: Translator,
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    size: str | None = None,
    batch_size: int = 1,
    keep_format: bool = False,
    gallery: bool = True,
    progress: bool = True,
) -> dict:
    """Translate every input into out_dir (same relative names, .png unless keep_format).

    out_dir may instead name an image file (`out/x.png`) when there is a single input. Every output path is
    planned before anything is written: an output that would overwrite an input, or two inputs with the same
    output, is a UserError.
    Returns {"written": [(input, output)], "failed": [(input, reason)], "gallery": path or None}; writes
    out_dir/index.html unless out_dir is a file name.
    """
    size = parse_size(size)
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    out = Path(out_dir)
    _check_out(out)
    items = expand_inputs(inputs, out)
    single_file = out.suffix.lower() in OUTPUT_EXTENSIONS and not out.is_dir()
    if single_file and len(items) != 1:
        raise UserError(
            f"--out {out} names an image file, but the inputs hold {len(items)} images; "
            f"give a folder for several images (or name a folder without an image extension)"
        )
    plan: dict[
        tuple[Path, Path], Path
    ] = {}  # (input, relative name) -> output; an input named twice is translated once
    for src, rel in items:
        plan.setdefault(
            (src, rel), _output_path(out if single_file else out / rel, translator.out_ch, keep_format or single_file)
        )
    items = list(plan)
    _check_targets(
        [src for src, _ in items],
        list(plan.values()),
        None if keep_format else [_output_path(out / rel, translator.out_ch, True) for _, rel in items],
    )
    if translator.per_image:  # as the reference's test.py (batch size 1): each image its own batch statistics
        batch_size = 1
    written, failed = [], []
    from ..progress import progress_bar

    bar = progress_bar(total=len(items), unit="img", disable=not progress)
    # networks in train mode (dropout): the same outputs every run; on a CPU each image's activations come back
    # from the heap instead of being mapped afresh (51,000 page faults an image at 512x512, 7-10% of its time)
    with seeded(0, translator.device), reuse_freed_memory(translator.device):
        for group, batch in _batches(items, translator, size, batch_size):
            if batch is None:
                failed.append((group[0][0], group[0][2]))
                bar.update(1)
                continue
            try:
                outputs = translator(batch)
            except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError (CUDA) is a RuntimeError
                if not _out_of_memory(e):
                    raise
                raise UserError(_memory_advice(translator, group[0][0], batch, e)) from None
            for (src, rel, _), image in zip(group, outputs):
                save_image(image, plan[src, rel])
                written.append((src, plan[src, rel]))
            bar.update(len(group))
    bar.close()
    page = None
    if gallery and written and not single_file:
        page = out / "index.html"
        write_gallery(page, written, title=translator.description)
    return {"written": written, "failed": failed, "gallery": page}


def _out_of_memory(e: BaseException) -> bool:
    text = str(e)
    return (
        isinstance(e, (MemoryError, torch.OutOfMemoryError))
        or "can't allocate memory" in text
        or "out of memory" in text
    )


def _memory_advice(translator: Translator, src: Path, batch: torch.Tensor, e: BaseException) -> str:
    """What to do when a batch does not fit: tiles (same result, less memory), a smaller batch, bf16."""
    n, _, h, w = batch.shape
    tips = []
    if translator.tile:
        tips.append(f"a smaller --tile than {translator.tile}")
    elif tiling_problem(translator.fn) is None:
        tips.append("--tile 512 (the same result in about a third of the memory)")
    if n > 1:
        tips.append("--batch-size 1")
    if translator.autocast is None:
        tips.append("--precision bf16 (or fp16 on a GPU)")
    return f"out of memory translating {src} ({w}x{h}, {n} image(s) at once): {first_line(e)}" + (
        f"; try {', or '.join(tips)}" if tips else "; try --size to translate it smaller"
    )


def _output_path(path: Path, out_ch: int, keep_format: bool) -> Path:
    """Where save_image writes `path`: .png unless keep_format; .npy for channel counts images cannot hold."""
    if out_ch not in (1, 3, 4) or path.suffix.lower() == ".npy":
        return path.with_suffix(".npy")
    return path if keep_format else path.with_suffix(".png")


def _check_out(out: Path) -> None:
    """--out must be (or be creatable as) a folder, or an image file name; a path through an existing file is "
    "neither."""
    if out.exists() and not out.is_dir() and out.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise UserError(
            f"--out {out} is an existing file; give a folder for the translations (or an image file name for a "
            f"single input)"
        )
    check_parents(out)


def check_parents(out: Path) -> None:
    """The nearest existing folder above `out` must be a folder, not a file."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {out}: {parent} is a file, not a folder")
            break


def _check_targets(sources: list[Path], targets: list[Path], kept: list[Path] | None) -> None:
    """Refuse, before writing anything, outputs that would overwrite an input or each other.
    kept: the outputs --keep-format would give (None when it is on), to suggest it where it resolves a clash."""
    inputs = {_key(src): src for src in sources}
    files = {_file_id(src): src for src in sources}  # also catches links and case-insensitive file systems
    files.pop(None, None)
    for src, target in zip(sources, targets):
        hit = inputs.get(_key(target)) or files.get(_file_id(target))
        if hit is not None:
            raise UserError(
                f"the translation of {src} would overwrite the input {hit}; choose an --out folder "
                f"that holds no inputs (e.g. a new one)"
            )
    seen: dict[str, Path] = {}
    for src, target in zip(sources, targets):
        other = seen.setdefault(_key(target), src)
        if _key(other) != _key(src):
            fix = (
                "add --keep-format (outputs keep their inputs' formats and so their distinct names)"
                if kept is not None and len({_key(k) for k in kept}) == len(kept)
                else "rename one, or translate them into separate --out folders"
            )
            raise UserError(f"{other} and {src} would both be written to {target}; nothing was written: {fix}")


def _key(path: Path) -> str:
    return os.path.normcase(str(Path(path).resolve()))


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def save_image(image: torch.Tensor, path: Path) -> None:
    """(C, H, W) uint8 -> file; the format follows the suffix; >4 channels are saved as .npy."""
    c = image.shape[0]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if c not in (1, 3, 4) or path.suffix == ".npy":
            import numpy as np

            np.save(path.with_suffix(".npy"), image.permute(1, 2, 0).cpu().numpy())
            return
        array = image.permute(1, 2, 0).cpu().numpy()
        Image.fromarray(array[:, :, 0] if c == 1 else array).save(path)
    except (OSError, ValueError) as e:  # no permission, disk full, a format that cannot hold this image
        raise UserError(f"cannot write {path}: {e}") from None
