"""Finding image files and reading them as tensors with a fixed channel count."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as TF

from ..errors import UserError
from .limits import LimitError, open_image, size_problem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ARRAY_EXTENSIONS = (".npy",)  # (H, W, C) arrays for multispectral data: uint8, or float in [0, 1]
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def find_images(folder: str | Path, what: str = "images") -> list[Path]:
    """All image files under `folder`, recursively (through symlinked folders too, each folder once),
    sorted; hidden files and folders (.ipynb_checkpoints, .git) are left out. A clear error if there
    are none."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"{what}: {folder} is not a folder")
    exts = IMAGE_EXTENSIONS + ARRAY_EXTENSIONS
    files, seen = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop, or a folder linked twice
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [
            Path(root) / n
            for n in names
            if Path(n).suffix.lower() in exts and not n.startswith(".") and (Path(root) / n).is_file()
        ]
    files.sort()
    if not files:
        raise UserError(f"{what}: no images found in {folder} (looked for {', '.join(exts)})")
    return files


class ImageReadError(UserError):
    """An image file could not be used: corrupt, truncated, not an image, or above the pixel limit (data/limits.py).
    Its message is one line naming the file; a UserError, so that a reader that does not skip it ends the command
    with that line."""


class ChannelWarner:
    """Warns once per (domain, file mode) when images are converted to the domain's channel count."""

    def __init__(self):
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, path: Path, mode: str, channels: int) -> None:
        key = (mode, str(channels))
        if key not in self.seen:
            self.seen.add(key)
            warnings.warn(
                f"{path}: {mode} image converted to {channels} channel(s) (further such conversions are silent)",
                stacklevel=3,
            )


_warner = ChannelWarner()


def read_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """Read an image as a (C, H, W) uint8 tensor with exactly `channels` channels.

    EXIF orientation is applied. Grey, palette, RGBA and CMYK files are converted to the requested
    mode (warning once per kind), 16-bit and float grey images scaled to 8 bits (`_to_8_bits`);
    `.npy` arrays must already have `channels` channels.
    """
    path = Path(path)
    if path.suffix.lower() in ARRAY_EXTENSIONS:
        return _read_array(path, channels)
    try:
        with open_image(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except LimitError as e:
        raise ImageReadError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, EOFError, zlib.error...
        raise ImageReadError(f"{path}: cannot read image ({_reason(e)})") from None
    return pil_to_uint8(im, channels, path)


def _reason(e: BaseException) -> str:
    """An exception as a short one-line reason."""
    text = " ".join(str(e).split())
    return text if text else type(e).__name__


def pil_to_uint8(im: Image.Image, channels: int, name: str | Path = "image") -> torch.Tensor:
    """A PIL image as a (C, H, W) uint8 tensor with `channels` channels (1, 3 or 4), converted as `read_image` does."""
    if channels not in _MODES:
        raise UserError(f"{name}: {channels}-channel domains need .npy (H, W, {channels}) arrays, not image files")
    want = _MODES[channels]
    im = _to_8_bits(im, name)
    if im.mode != want:
        if not (im.mode == "P" and want == "RGB"):
            _warner(name, im.mode, channels)
        im = im.convert(want)
    return TF.pil_to_tensor(im)


def _to_8_bits(im: Image.Image, path: Path) -> Image.Image:
    """Grey images of more than 8 bits as 8-bit "L", scaled rather than clipped (Pillow's own
    convert("L") clips a 16-bit image to white): 16-bit and 32-bit integers as 0..65535 (16-bit
    PNG/TIFF; larger values clip), floats as 0..1 (as `.npy` arrays)."""
    if im.mode.startswith("I"):
        a = np.asarray(im).astype(np.float64) / 65535.0
    elif im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        if a.size and (a.max() > 1.0 or a.min() < 0.0):
            warnings.warn(
                f"{path}: values from {a.min():g} to {a.max():g}; float images are read as 0..1, so the rest is "
                f"clipped",
                stacklevel=2,
            )
    else:
        return im
    return Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), "L")


def _read_array(path: Path, channels: int) -> torch.Tensor:
    image_size(path)  # the pixel limit, from the array's header
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ImageReadError(f"{path}: cannot read array ({_reason(e)})") from None
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] != channels:
        raise UserError(
            f"{path}: array of shape {a.shape} does not have {channels} channels (expected (H, W, {channels}))"
        )
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous()


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    if path.suffix.lower() in ARRAY_EXTENSIONS:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as e:
            raise ImageReadError(f"{path}: cannot read array ({_reason(e)})") from None
        problem = size_problem(path, shape[1], shape[0]) if len(shape) >= 2 else None
        if problem:
            raise ImageReadError(problem)
        return shape[1], shape[0]
    try:
        with open_image(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except LimitError as e:
        raise ImageReadError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - as read_image
        raise ImageReadError(f"{path}: cannot read image ({_reason(e)})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
