"""Inception pool3 features of images and image folders, following pytorch-fid's protocol.

A folder's images are found and decoded as training finds and decodes them (`cyclegan.data.files`:
recursive, training's extensions, EXIF orientation applied), so one folder means the same images to
`train`, `translate`, `fid` and `evaluate`. Per image (pytorch-fid `ImagePathDataset` +
`InceptionV3(resize_input=True, normalize_input=True)`): convert to RGB (grayscale files become 3 equal
channels), scale to [0, 1] as
`ToTensor` does, resize to 299x299 bilinearly (`F.interpolate`, `align_corners=False`, no antialias),
map to [-1, 1] as `2x - 1`, run the network in float32; statistics are taken in float64. (The TF graph
itself scaled inputs as `x/128 - 1`; pytorch-fid's `2x - 1` is kept so numbers match the field's.)

A folder's features are cached in `<cache>/features/` keyed by its absolute path, the files' paths
relative to it, their sizes and modification times, so reference statistics of a dataset are computed once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.files import ImageReadError, find_images, read_image
from ..errors import UserError
from ..progress import progress_bar
from .cache import atomic_write, cache_dir
from .caveats import check_image_count
from .clean import CLEAN_PROTOCOL, clean_preprocess, quantize
from .frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from .inception import FEATURE_DIM, INPUT_SIZE
from .kid import kid
from .weights import load_fid_inception

# Bump when anything that changes feature values changes (file discovery or decoding, preprocessing,
# network, weights). v2: training's file discovery and decoder (EXIF orientation applied, .npy arrays).
PROTOCOL = "tf-inception-2015-12-05/pool3/pytorch-fid-v2"
# `--protocol` name -> the protocol string its cached features are keyed by (`clean.py` describes clean)
PROTOCOLS = {"legacy": PROTOCOL, "clean": CLEAN_PROTOCOL}


def check_protocol(protocol: str) -> str:
    """`protocol` if it is a known FID protocol; a UserError listing them otherwise."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown FID protocol {protocol!r}; choose from: {', '.join(PROTOCOLS)}")
    return protocol


def list_images(folder: str | Path, what: str = "images") -> list[Path]:
    """The images `cyclegan train` would find in `folder` (`cyclegan.data.files.find_images`: recursive,
    sorted, hidden files skipped); a UserError naming the folder if there are none."""
    return find_images(folder, what)


def load_image(path: str | Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB, decoded as training decodes (grey, palette, RGBA and CMYK converted to RGB,
    EXIF orientation applied); a UserError naming the file if it cannot be read."""
    try:
        return read_image(path, 3)
    except ImageReadError as e:
        raise UserError(f"{e}; remove or replace it") from None


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, 299, 299) in [-1, 1], exactly as pytorch-fid's InceptionV3 does."""
    x = F.interpolate(images.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


@contextlib.contextmanager
def _no_tf32():
    """Inception in true float32 on CUDA too: cuDNN convolutions default to TF32 there (a 10-bit
    mantissa), while pytorch-fid's reference statistics are float32 throughout."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
@_no_tf32()
def tensor_features(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int = 50, protocol: str = "legacy"
) -> np.ndarray:
    """(N, 2048) float32 pool3 features of (N, 3, H, W) images in [0, 1] (e.g. `(G(x) + 1) / 2`); the clean
    protocol rounds them to 8 bits first."""
    device = next(model.parameters()).device
    if check_protocol(protocol) == "clean":
        images = torch.stack([clean_preprocess(x) for x in quantize(images.cpu())]) if len(images) else images
        out = [model(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    else:
        out = [
            model(preprocess(images[i : i + batch_size].to(device))).cpu() for i in range(0, len(images), batch_size)
        ]
    return torch.cat(out).numpy() if out else np.zeros((0, FEATURE_DIM), np.float32)


class _Images(torch.utils.data.Dataset):
    def __init__(self, files: Sequence[Path], protocol: str = "legacy"):
        self.files, self.protocol = list(files), protocol

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        """(image, "") or, for a file that cannot be read, (zeros, the reason): returned rather than raised,
        so that a worker process's failure reaches the caller as one line."""
        try:
            image = read_image(self.files[i], 3)
        except (ImageReadError, UserError) as e:
            return torch.zeros(3, INPUT_SIZE, INPUT_SIZE), str(e)
        if self.protocol == "clean":
            return clean_preprocess(image), ""
        # Resized one by one, so images of different sizes can share a batch; bilinear resizing acts
        # on each image separately, so this equals pytorch-fid's batched resize.
        return preprocess(image[None] / 255.0)[0], ""


@torch.no_grad()
@_no_tf32()
def file_features(
    model: torch.nn.Module,
    files: Sequence[Path],
    batch_size: int = 50,
    *,
    num_workers: int = 0,
    progress: bool = False,
    protocol: str = "legacy",
) -> np.ndarray:
    """(N, 2048) float32 pool3 features of image files, in the given order; a UserError naming the first
    file that cannot be read (a score over a silently shrunken set would mislead)."""
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(
        _Images(files, check_protocol(protocol)), batch_size=batch_size, num_workers=num_workers
    )
    feats = []
    for batch, errors in progress_bar(loader, disable=not progress, desc="inception", unit="batch", leave=False):
        bad = next((e for e in errors if e), None)
        if bad:
            raise UserError(f"{bad}; remove or replace it")
        feats.append(model(batch.to(device)).cpu())
    return torch.cat(feats).numpy()


def folder_key(folder: str | Path, files: Sequence[Path], protocol: str = "legacy") -> str:
    """Cache key of a folder's features: protocol, absolute path, and each file's path (relative to the
    folder: discovery is recursive, so names alone can repeat), size and mtime."""
    stats = [(_relative(f, folder), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    blob = json.dumps([PROTOCOLS[protocol], str(Path(folder).resolve()), stats])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _relative(file: Path, folder: str | Path) -> str:
    return file.relative_to(folder).as_posix()


class InceptionLoader:
    """Loads the FID network on first use, so fully cached folders never need the weights."""

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        cache: str | Path | None = None,
    ):
        self.weights, self.cache = weights, cache
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model: torch.nn.Module | None = None

    def __call__(self) -> torch.nn.Module:
        if self._model is None:
            self._model = load_fid_inception(self.weights, cache=self.cache).to(self.device)
        return self._model


ModelSource = Callable[[], torch.nn.Module] | torch.nn.Module | None


def folder_features(
    folder: str | Path,
    model: ModelSource = None,
    *,
    batch_size: int = 50,
    num_workers: int = 0,
    use_cache: bool = True,
    cache: str | Path | None = None,
    progress: bool = False,
    protocol: str = "legacy",
) -> np.ndarray:
    """(N, 2048) float32 features of the images in `folder`, read from / written to the feature cache.

    `model` is the network, or a zero-argument callable returning it (default: an `InceptionLoader`),
    called only on a cache miss. The cache lives in `cache` (default `cache_dir()`). `protocol`: "legacy"
    (pytorch-fid) or "clean" (clean-fid, `clean.py`).
    """
    files = list_images(folder)
    root = Path(cache if cache is not None else cache_dir())
    path = (
        root / "features" / f"{Path(folder).resolve().name}-{folder_key(folder, files, check_protocol(protocol))}.npz"
    )
    if use_cache and path.is_file():
        with np.load(path) as f:
            return f["features"]
    if model is None:
        model = InceptionLoader(cache=cache)
    net = model if isinstance(model, torch.nn.Module) else model()
    feats = file_features(net, files, batch_size, num_workers=num_workers, progress=progress, protocol=protocol)
    if use_cache:
        names = np.array([_relative(f, folder) for f in files])
        atomic_write(
            path, lambda tmp: np.savez(tmp, features=feats, files=names, protocol=np.array(PROTOCOLS[protocol]))
        )
    return feats


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from a pytorch-fid statistics file (`.npz` with arrays `mu` and `sigma`)."""
    with np.load(path) as f:
        if "mu" not in f or "sigma" not in f:
            raise UserError(f"{path} holds no 'mu' and 'sigma' arrays (expected pytorch-fid statistics)")
        return f["mu"].astype(np.float64), f["sigma"].astype(np.float64)


def folder_statistics(folder: str | Path, model: ModelSource = None, **options) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) in float64 of a folder's features (`options` as `folder_features`), or of a `.npz`."""
    if Path(folder).suffix == ".npz" and Path(folder).is_file():
        return load_statistics(folder)
    return feature_statistics(folder_features(folder, model, **options))


def fid_from_folders(
    dir1: str | Path,
    dir2: str | Path,
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    cache: str | Path | None = None,
    **options,
) -> float:
    """FID between two image folders (either may be a pytorch-fid `.npz` of statistics instead).

    `options` go to `folder_features` (batch_size, num_workers, use_cache, progress).
    """
    for d in (dir1, dir2):
        if Path(d).suffix != ".npz":
            check_image_count(len(list_images(d)), d, "FID")
    model = InceptionLoader(weights, device, cache)
    if not any(Path(d).suffix == ".npz" for d in (dir1, dir2)):
        f1 = folder_features(dir1, model, cache=cache, **options)
        return frechet_distance_from_features(f1, folder_features(dir2, model, cache=cache, **options))
    s1 = folder_statistics(dir1, model, cache=cache, **options)
    s2 = folder_statistics(dir2, model, cache=cache, **options)
    return frechet_distance(*s1, *s2)


def kid_from_folders(
    dir1: str | Path,
    dir2: str | Path,
    *,
    weights: str | Path | None = None,
    device: str | None = None,
    cache: str | Path | None = None,
    num_subsets: int = 100,
    subset_size: int = 1000,
    rng: np.random.Generator | int = 0,
    **options,
) -> tuple[float, float]:
    """KID (mean, std) between two image folders; `options` as `fid_from_folders`. The std is NaN when
    every subset is both whole folders (see `kid`)."""
    for d in (dir1, dir2):
        check_image_count(len(list_images(d)), d, "KID")
    model = InceptionLoader(weights, device, cache)
    f1 = folder_features(dir1, model, cache=cache, **options)
    f2 = folder_features(dir2, model, cache=cache, **options)
    return kid(f1, f2, num_subsets=num_subsets, subset_size=subset_size, rng=rng)
