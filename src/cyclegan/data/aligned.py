"""Paired (aligned) data for pix2pix: each sample is an image and its counterpart, cropped and flipped alike.

Two layouts, as the reference's `aligned` dataset and its `combine_A_and_B.py`:
- side by side: one file holds A in its left half and B in its right half (pix2pix's facades: photo on
  the left, colour-coded labels on the right, so A = photo, B = labels);
- two folders: A and B images in separate folders, paired by file name (path relative to the folder,
  without the extension, so `x.jpg` pairs with `x.png`).

As in `datasets.py`, every random choice for sample `(epoch, index)` is drawn from
`sample_generator(seed, epoch, index)`: the crop offset and the flip are drawn once and applied to both
halves, so the pair stays pixel-aligned. `data.direction` is not applied here: items always hold "A" and
"B", and a paired method picks its input and target from them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..errors import UserError
from .datasets import sample_generator
from .files import ImageReadError, find_images, image_size, read_image
from .transforms import Preprocess

Pair = tuple[Path, Path | None]  # (side-by-side file, None) or (A file, B file)


def split_halves(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, H, W) side-by-side image -> its left (A) and right (B) halves, each (C, H, W // 2).

    An odd width drops the last column, so both halves have the same size (and take the same crop).
    """
    half = image.shape[-1] // 2
    return image[..., :half], image[..., half : 2 * half]


def _convert_channels(image: torch.Tensor, channels: int, path: Path) -> torch.Tensor:
    if image.shape[0] == channels:
        return image
    if channels == 1 and image.shape[0] == 3:
        return TF.rgb_to_grayscale(image)
    raise UserError(
        f"{path}: cannot turn a {image.shape[0]}-channel half into {channels} channels; "
        "side-by-side files need data.channels_a == data.channels_b, or 1 and 3"
    )


def read_pair(pair: Pair, channels_a: int = 3, channels_b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one pair as two (C, H, W) uint8 tensors (A, B); raises ImageReadError for corrupt files."""
    first, second = pair
    if second is not None:
        return read_image(first, channels_a), read_image(second, channels_b)
    both = read_image(first, channels_a if channels_a == channels_b else 3)
    a, b = split_halves(both)
    return _convert_channels(a, channels_a, first), _convert_channels(b, channels_b, first)


def pair_folders(dir_a: str | Path, dir_b: str | Path) -> list[Pair]:
    """Pair the images of two folders by relative path without extension; every image must have a partner."""
    files_a, files_b = find_images(dir_a, "domain A"), find_images(dir_b, "domain B")
    key = lambda root, f: f.relative_to(root).with_suffix("").as_posix()  # noqa: E731
    by_key_b = {key(Path(dir_b), f): f for f in files_b}
    by_key_a = {key(Path(dir_a), f): f for f in files_a}
    missing_b = sorted(set(by_key_a) - set(by_key_b))
    missing_a = sorted(set(by_key_b) - set(by_key_a))
    if missing_b or missing_a:
        lonely = [f"{dir_a}/{k}" for k in missing_b[:3]] + [f"{dir_b}/{k}" for k in missing_a[:3]]
        raise UserError(
            f"paired folders {dir_a} and {dir_b} do not match: {len(missing_b) + len(missing_a)} "
            f"image(s) without a partner of the same name (e.g. {', '.join(lonely)})"
        )
    return [(by_key_a[k], by_key_b[k]) for k in sorted(by_key_a)]


def aligned_pairs(root: str = "", dir_a: str = "", dir_b: str = "", phase: str = "train") -> list[Pair]:
    """Resolve paired data: `dir_a` + `dir_b` (paired by name), else `root/<phase>/` (side-by-side files),
    else `root/<phase>A/` + `root/<phase>B/` (paired by name), else side-by-side files directly in `root`."""
    if dir_a or dir_b:
        if not (dir_a and dir_b):
            raise UserError("paired data from two folders needs both --data-a DIR and --data-b DIR")
        return pair_folders(dir_a, dir_b)
    if not root:
        raise UserError(
            f"no paired data given: pass a folder holding {phase}/ (side-by-side A|B images) "
            f"or {phase}A/ and {phase}B/ (matching names), or --data-a DIR --data-b DIR"
        )
    base = Path(root)
    if (base / phase).is_dir():
        return [(f, None) for f in find_images(base / phase, f"side-by-side images ({phase})")]
    if (base / f"{phase}A").is_dir() and (base / f"{phase}B").is_dir():
        return pair_folders(base / f"{phase}A", base / f"{phase}B")
    if not base.is_dir():
        raise UserError(f"paired data: folder {base} does not exist")
    return [(f, None) for f in find_images(base, f"side-by-side images (no {phase}/ or {phase}A/+{phase}B/ in {base})")]


def validate_pairs(pairs: Sequence[Pair], preprocess: Preprocess) -> None:
    """Read each header once: unreadable files, images too small for the crop, and halves that would
    take different crops fail here, by name."""
    for first, second in pairs:
        try:
            if second is None:
                w, h = image_size(first)
                sizes = [(w // 2, h)]
            else:
                sizes = [image_size(first), image_size(second)]
        except ImageReadError as e:
            raise UserError(f"{e}; remove or replace it (paired data)") from None
        for w, h in sizes:
            preprocess.check_size(w, h, first)
        if len({preprocess.resized_size(w, h) for w, h in sizes}) > 1:
            raise UserError(
                f"{first} and {second}: the pair has sizes {sizes[0]} and {sizes[1]}, which give "
                f"different sizes after '{preprocess.mode}'; resize one, or use "
                "data.preprocess=resize_and_crop"
            )


class AlignedDataset(Dataset):
    """Paired images. Sample i of an epoch is pair i; items are dicts: A (C_a, h, w) and B (C_b, h, w)
    float in [-1, 1] with the same crop and flip, and `skipped` (corrupt pairs replaced by their successor).
    """

    def __init__(
        self, pairs: Sequence[Pair], preprocess: Preprocess, channels_a: int = 3, channels_b: int = 3, seed: int = 0
    ):
        self.pairs = list(pairs)
        self.preprocess = preprocess
        self.channels_a, self.channels_b = channels_a, channels_b
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, i = key
        gen = sample_generator(self.seed, epoch, i)
        for skipped in range(min(len(self.pairs), 10)):
            pair = self.pairs[(i + skipped) % len(self.pairs)]
            try:
                a, b = read_pair(pair, self.channels_a, self.channels_b)
            except ImageReadError as e:
                warnings.warn(f"skipping corrupt image: {e}", stacklevel=2)
                continue
            rw, rh = self.preprocess.resized_size(a.shape[-1], a.shape[-2])
            params = self.preprocess.params(rw, rh, gen)  # one draw, both halves
            return {"A": self.preprocess(a, gen, params), "B": self.preprocess(b, gen, params), "skipped": skipped}
        raise UserError(f"10 consecutive unreadable images from {self.pairs[i][0]}; check the dataset")


def build_aligned(data_cfg, seed: int, phase: str = "train") -> AlignedDataset:
    """The paired dataset of a DataConfig (root / dir_a / dir_b, max_images, preprocessing), validated."""
    pairs = aligned_pairs(data_cfg.root, data_cfg.dir_a, data_cfg.dir_b, phase)
    if data_cfg.max_images:
        pairs = pairs[: data_cfg.max_images]
    pre = Preprocess(data_cfg.preprocess, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip)
    validate_pairs(pairs, pre)
    return AlignedDataset(pairs, pre, data_cfg.channels_a, data_cfg.channels_b, seed)


def split_aligned_folder(src: str | Path, out_a: str | Path, out_b: str | Path) -> int:
    """Write the halves of every side-by-side image in `src` as PNGs: left -> out_a, right -> out_b.

    The same relative names are kept (with .png), so the result serves as unpaired trainA/trainB folders
    (CycleGAN on facades) or as two paired folders. Returns the number of images split; files already
    written are kept.
    """
    src, out_a, out_b = Path(src), Path(out_a), Path(out_b)
    n = 0
    for f in find_images(src, "side-by-side images"):
        rel = f.relative_to(src).with_suffix(".png")
        targets = (out_a / rel, out_b / rel)
        if not all(t.is_file() for t in targets):
            a, b = split_halves(read_image(f, 3))
            for half, target in zip((a, b), targets):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name("." + target.stem + ".tmp.png")  # hidden: find_images skips it
                TF.to_pil_image(half).save(tmp)
                tmp.replace(target)
        n += 1
    return n
