"""What FID and KID can and cannot say about small image sets: the checks and notes the commands share.

FID needs a covariance (>= 2 images per set) and is biased upward for small sets: the standard protocol
uses at least 2048 images (the feature dimension) or the whole test set, and published values are not
comparable with FIDs of a few hundred images. KID is unbiased but its spread over subsets means nothing
when every subset is the whole of both sets.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .kid import kid_subsets_identical

MIN_IMAGES = 2  # per set: a covariance (FID) and the unbiased MMD^2 (KID) need two samples
PROTOCOL_IMAGES = 2048  # FID's feature dimension: below it the covariance is rank-deficient and FID inflated


def check_image_count(n: int, where: str | Path, metrics: str = "FID and KID", fix: str = "") -> None:
    """A UserError naming `where` and the count when a set has fewer than MIN_IMAGES images."""
    if n < MIN_IMAGES:
        need = "need" if " and " in metrics else "needs"
        raise UserError(
            f"{where}: {n} image{'s' if n != 1 else ''}; {metrics} {need} at least {MIN_IMAGES} images per "
            f"set (and mean little below a few hundred){'; ' + fix if fix else ''}"
        )


def check_kid_options(num_subsets: int, subset_size: int, prefix: str = "--kid-") -> None:
    """A UserError for KID options that cannot give a value (`prefix` names them as the caller spells them)."""
    if num_subsets < 1:
        raise UserError(f"{prefix}subsets must be at least 1, got {num_subsets}")
    if subset_size < MIN_IMAGES:
        raise UserError(
            f"{prefix}subset-size must be at least {MIN_IMAGES} (the unbiased MMD needs {MIN_IMAGES} "
            f"images per subset), got {subset_size}; default 1000, capped at the smaller set"
        )


def fid_small_sets_note(n1: int, n2: int) -> str | None:
    """A one-line caveat when either set is smaller than the standard protocol's 2048 images, else None."""
    if min(n1, n2) >= PROTOCOL_IMAGES:
        return None
    return (
        f"FID on {n1} and {n2} images is biased upward for sets under {PROTOCOL_IMAGES} images and not "
        f"comparable with published values (>= {PROTOCOL_IMAGES} images or the whole test set); "
        "compare FIDs only at equal set sizes"
    )


def kid_std_note(n1: int, n2: int, subset_size: int) -> str | None:
    """A one-line note when KID's std is not available (every subset is both whole sets), else None."""
    if not kid_subsets_identical(n1, n2, subset_size):
        return None
    return (
        f"KID std not available: with {n1} and {n2} images every subset is the whole of both sets "
        f"(subset size {min(subset_size, n1, n2)}), so there is no spread to measure"
    )
