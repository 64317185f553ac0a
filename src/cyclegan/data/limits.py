"""The largest image cyclegan accepts, decided in one place for every reader (train, translate, evaluate, fid).

The limit is a pixel count, `DEFAULT_MAX_PIXELS` unless the environment variable CYCLEGAN_MAX_PIXELS says
otherwise (0 = no limit). An environment variable rather than a flag, so that every process that reads
images sees the same limit without it being passed through each command: DataLoader workers, torchrun
ranks, `evaluate`'s and `fid`'s readers. An image above it is refused from its header, before any pixel is
decoded, as an `ImageReadError` naming the file, its size and how to raise the limit; Pillow's own
decompression-bomb check (a warning above its MAX_IMAGE_PIXELS, an error above twice that) is set aside
while cyclegan opens a file, so that one number decides.

The default is Pillow's: 89,478,485 pixels (a 9,459 x 9,459 image, 256 MiB of RGB at one byte per channel),
enough for any photograph from a camera, and a guard against a tiny file that claims gigapixels.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

from PIL import Image

from ..errors import UserError

DEFAULT_MAX_PIXELS = 89_478_485  # = Pillow's default Image.MAX_IMAGE_PIXELS: int(1024 * 1024 * 1024 // 4 // 3)
ENV = "CYCLEGAN_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel limit now in force (0 = none): CYCLEGAN_MAX_PIXELS if set, else DEFAULT_MAX_PIXELS."""
    text = os.environ.get(ENV, "").strip().replace("_", "").replace(",", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        raise UserError(f"{ENV}={os.environ[ENV]!r}: expected a number of pixels (0 = no limit)") from None
    if value < 0:
        raise UserError(f"{ENV}={value}: expected a number of pixels (0 = no limit)")
    return value


def size_problem(path: str | Path, width: int, height: int, limit: int | None = None) -> str | None:
    """The one-line reason an image of width x height is refused (None if it is accepted)."""
    limit = max_pixels() if limit is None else limit
    if limit and width * height > limit:
        return (
            f"{path}: image too large ({width}x{height} = {width * height:,} pixels, above the limit of "
            f"{limit:,}; to accept it set {ENV}={width * height} or 0 for no limit)"
        )
    return None


@contextlib.contextmanager
def open_image(path: str | Path):
    """`PIL.Image.open(path)` under this module's limit: raises LimitError (from the header alone) for an image
    above it; Pillow's own decompression-bomb warning and error give way to the limit."""
    limit = max_pixels()
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = None  # only while the header is read (Image.open is where Pillow checks it)
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    with im:
        problem = size_problem(path, *im.size, limit=limit)
        if problem:
            raise LimitError(problem)
        yield im


class LimitError(Exception):
    """An image above the pixel limit (turned into an ImageReadError by the readers)."""
