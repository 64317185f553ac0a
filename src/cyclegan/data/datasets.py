"""Datasets whose every random choice is a function of (seed, epoch, index).

A training sample is addressed by a key `(epoch, index)`; its crop, flip and (for unaligned data) the
random partner image are drawn from a generator seeded by (seed, epoch, index). Data order therefore
needs no checkpointed RNG: resuming at (epoch, step) reproduces the exact batches, whatever the number
of workers or ranks.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from ..errors import UserError
from .files import ImageReadError, find_images, image_size, read_image
from .transforms import Preprocess


def sample_generator(seed: int, epoch: int, index: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one (seed, epoch, index) triple; distinct streams per purpose."""
    key = (((seed * 1_000_003 + epoch) * 1_000_033 + index) * 7 + stream) % (2**63 - 1)
    return torch.Generator().manual_seed(key)


def validate_files(files: Sequence[Path], preprocess: Preprocess, what: str, batch_size: int = 1) -> None:
    """Read each header once: unreadable files and images too small for the crop fail here, all of
    them named in one error; so do images of several sizes where a batch must stack them."""
    unreadable, small, sizes = [], [], {}
    for f in files:
        try:
            w, h = image_size(f)
        except ImageReadError as e:
            unreadable.append(str(e))
            continue
        problem = preprocess.size_problem(w, h, f)
        if problem:
            small.append(problem)
        else:
            sizes.setdefault(preprocess.resized_size(w, h), f)
    if unreadable or small:
        problems = unreadable + small
        shown = " | ".join(problems[:10]) + (f" | ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        fixes = (["remove or replace the unreadable ones"] if unreadable else []) + (
            [preprocess.SIZE_FIX] if small else []
        )
        raise UserError(f"{what}: {len(problems)} of {len(files)} images cannot be used ({'; '.join(fixes)}): {shown}")
    if batch_size > 1 and not preprocess.crops and len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        raise UserError(
            f"{what}: data.preprocess={preprocess.mode} keeps each image's size, and a batch of {batch_size} needs "
            f"one size, but {f1} becomes {s1[0]}x{s1[1]} and {f2} {s2[0]}x{s2[1]}; use --batch-size 1 "
            "or a cropping data.preprocess (resize_and_crop, crop, scale_width_and_crop)"
        )


class UnalignedDataset(Dataset):
    """Two unpaired image sets (the paper's X and Y). One epoch is max(|A|, |B|) samples; sample i
    holds A[i % |A|] and a B drawn at random (or B[i % |B|] with serial=True), as the reference.

    Items are dicts: A (C_a, h, w) and B (C_b, h, w) float in [-1, 1], `skipped` (corrupt files
    replaced by their successor while building this sample).
    """

    def __init__(
        self,
        files_a: Sequence[Path],
        files_b: Sequence[Path],
        preprocess: Preprocess,
        channels_a: int = 3,
        channels_b: int = 3,
        seed: int = 0,
        serial: bool = False,
    ):
        self.files_a, self.files_b = list(files_a), list(files_b)
        self.preprocess = preprocess
        self.channels_a, self.channels_b = channels_a, channels_b
        self.seed, self.serial = seed, serial

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _load(self, files: list[Path], i: int, channels: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        for skipped in range(min(len(files), 10)):
            path = files[(i + skipped) % len(files)]
            try:
                return self.preprocess(read_image(path, channels), gen), skipped
            except ImageReadError as e:
                warnings.warn(f"skipping corrupt image: {e}", stacklevel=2)
        raise UserError(f"10 consecutive unreadable images from {files[i % len(files)]}; check the dataset")

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, i = key
        gen = sample_generator(self.seed, epoch, i)
        j = i % len(self.files_b) if self.serial else int(torch.randint(0, len(self.files_b), (), generator=gen))
        a, skipped_a = self._load(self.files_a, i % len(self.files_a), self.channels_a, gen)
        b, skipped_b = self._load(self.files_b, j, self.channels_b, gen)
        return {"A": a, "B": b, "skipped": skipped_a + skipped_b}


class EpochBatchSampler(Sampler):
    """Yields batches of (epoch, index) keys: a seeded permutation of the epoch, this rank's shard.

    Each rank takes every world_size-th index of the permutation (no overlap within an epoch, equal
    counts so all ranks take the same number of steps). `start_batch` skips batches already trained
    (resume mid-epoch).
    """

    def __init__(
        self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True
    ):
        if n < world_size * batch_size:
            raise UserError(
                f"only {n} samples per epoch for {world_size} process(es) x batch {batch_size}; use a smaller batch "
                f"or more images"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return math.ceil((self.n // self.world_size) / self.batch_size)

    def indices(self, epoch: int) -> list[int]:
        if self.shuffle:
            order = torch.randperm(
                self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            ).tolist()
        else:
            order = list(range(self.n))
        per_rank = self.n // self.world_size
        return order[self.rank :: self.world_size][:per_rank]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        idx = self.indices(self.epoch)
        for b in range(self.start_batch, len(self)):
            yield [(self.epoch, i) for i in idx[b * self.batch_size : (b + 1) * self.batch_size]]


def training_folders(root: str, dir_a: str, dir_b: str) -> tuple[Path, Path]:
    """Resolve the two training folders from data.root (trainA/, trainB/) or data.dir_a / data.dir_b."""
    if not (dir_a and dir_b) and not root:
        raise UserError(
            "no training data given: pass a folder holding trainA/ and trainB/ (or --data-a DIR --data-b DIR)"
        )
    a = Path(dir_a) if dir_a else Path(root) / "trainA"
    b = Path(dir_b) if dir_b else Path(root) / "trainB"
    return a, b


def build_unaligned(data_cfg, seed: int, batch_size: int = 1) -> UnalignedDataset:
    """The training dataset of a DataConfig, validated up front (for batches of `batch_size`)."""
    dir_a, dir_b = training_folders(data_cfg.root, data_cfg.dir_a, data_cfg.dir_b)
    pre = Preprocess(data_cfg.preprocess, data_cfg.load_size, data_cfg.crop_size, data_cfg.flip)
    files_a = find_images(dir_a, "domain A")
    files_b = find_images(dir_b, "domain B")
    if data_cfg.max_images:
        files_a, files_b = files_a[: data_cfg.max_images], files_b[: data_cfg.max_images]
    validate_files(files_a, pre, "domain A", batch_size)
    validate_files(files_b, pre, "domain B", batch_size)
    return UnalignedDataset(files_a, files_b, pre, data_cfg.channels_a, data_cfg.channels_b, seed, data_cfg.serial)
