"""The short form in Python: `cyclegan.load(PATH).translate(image, direction="AtoB")`.

PATH is anything `cyclegan translate -c` takes: a run directory, a package folder (`cyclegan package`), a
`.model/.state.safetensors` checkpoint or a reference generator `.pth`. Images come as PIL images, file paths or
uint8 arrays ((H, W) or (H, W, C)), and come back as the same kind, at the input's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import UserError
from .translate import Translator, load_translator, seeded

DIRECTIONS = ("AtoB", "BtoA")


class Model:
    """A loaded model: its translators are built on first use, one per direction."""

    def __init__(self, path: str | Path, *, device=None, tile: int = 0, precision: str = "fp32"):
        self.path = Path(path)
        self.device, self.tile, self.precision = device, tile, precision
        self.directions = self._directions()
        self._translators: dict[str, Translator] = {}

    def _directions(self) -> tuple[str, ...]:
        if self.path.suffix in (".pth", ".pt"):  # one generator; the reference names G_B's file *_G_B.pth
            return ("BtoA",) if self.path.stem.endswith("G_B") else ("AtoB",)
        from .checkpoint import read_meta, resolve_checkpoint

        recorded = read_meta(resolve_checkpoint(self.path, "model")).get("directions", {})
        return tuple(d for d in DIRECTIONS if d in recorded)

    def translator(self, direction: str = "AtoB") -> Translator:
        """The Translator of one direction (tensors in, tensors out; cyclegan.translate)."""
        if direction not in self.directions:
            raise UserError(f"{self.path} translates {', '.join(self.directions)}, not {direction!r}")
        if direction not in self._translators:
            self._translators[direction] = load_translator(
                self.path, direction, self.device, precision=self.precision, tile=self.tile
            )
        return self._translators[direction]

    def translate(self, image, direction: str = "AtoB"):
        """A PIL image, a path or a uint8 array, translated at its own size: a PIL image (for a PIL image or a
        path) or a uint8 array of the same layout (for an array)."""
        t = self.translator(direction)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim not in (2, 3):
                raise UserError(
                    f"translate: expected a uint8 (H, W) or (H, W, C) array, got {image.dtype} {image.shape}"
                )
            with seeded(0, t.device):
                out = np.asarray(t.image(Image.fromarray(image)))
            return out  # (H, W) for one output channel, else (H, W, C)
        if isinstance(image, (str, Path)):
            try:
                with Image.open(image) as f:
                    image = f.copy()
            except OSError as e:
                raise UserError(f"{image}: not a readable image ({e})") from None
        if not isinstance(image, Image.Image):
            raise UserError(
                f"translate: expected a PIL image, a file path or a uint8 array, not a {type(image).__name__}"
            )
        with seeded(0, t.device):  # networks in train mode (dropout): the same output every call
            return t.image(image)

    def __repr__(self) -> str:
        return f"cyclegan.Model({str(self.path)!r}, directions={self.directions})"


def load(path: str | Path, *, device=None, tile: int = 0, precision: str = "fp32") -> Model:
    """A model from a run directory, a package folder, a checkpoint file or a reference .pth (offline).

    device: auto (default: a GPU if there is one) | cpu | cuda[:N]. tile: translate images larger than this in
    tiles (same result, less memory; cyclegan.tiled). precision: fp32 | bf16 | fp16 | auto.
    """
    if not Path(path).exists():
        raise UserError(f"cyclegan.load: {path} not found (give a run directory, package folder, checkpoint or .pth)")
    return Model(path, device=device, tile=tile, precision=precision)
