"""Name -> metric, over pure functions (feature extraction lives in `features.py`).

`cyclegan evaluate` lists these and computes the chosen ones; each entry says what it consumes, so the
caller knows whether to extract Inception features or to map label colours first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError
from ..metric_catalog import DEFINITIONS
from .frechet import frechet_distance_from_features
from .kid import kid
from .segmentation import segmentation_scores


def fid_from_features(features1, features2) -> float:
    """FID of two (N, 2048) Inception feature sets: the Frechet distance of their fitted Gaussians."""
    return frechet_distance_from_features(features1, features2)


@dataclass(frozen=True)
class Metric:
    """One registered metric: the function, what it takes, and how to read its value."""

    name: str
    fn: Callable
    inputs: str  # "features": two (N, 2048) Inception feature sets; "labels": truth and predicted label maps
    lower_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "fid",
            fid_from_features,
            "features",
            True,
            DEFINITIONS["fid"],
        ),
        Metric(
            "kid",
            kid,
            "features",
            True,
            DEFINITIONS["kid"],
        ),
        Metric(
            "seg",
            segmentation_scores,
            "labels",
            False,
            DEFINITIONS["seg"],
        ),
    )
}


def get_metric(name: str) -> Metric:
    """The metric called `name`; a UserError listing the known names otherwise."""
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r}; choose from: {', '.join(sorted(METRICS))}")
    return METRICS[name]


def describe_metrics() -> str:
    """One line per metric, for `--help` texts."""
    return "\n".join(f"{m.name}: {m.description}" for m in METRICS.values())


__all__ = ["METRICS", "Metric", "describe_metrics", "fid_from_features", "get_metric"]
