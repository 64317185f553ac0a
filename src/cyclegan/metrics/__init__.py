"""Metrics: FID, KID and the photo->labels segmentation scores.

Pure math (`frechet`, `kid`, `segmentation`) is separate from Inception feature extraction
(`inception`, `weights`, `features`); `registry.METRICS` names them for `cyclegan evaluate`.
Importing this package does not load any network weights.
"""

from .features import (
    fid_from_folders,
    folder_features,
    folder_statistics,
    kid_from_folders,
    list_images,
    tensor_features,
)
from .frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from .kid import kid, mmd2_unbiased
from .registry import METRICS, Metric, describe_metrics, fid_from_features, get_metric
from .segmentation import (
    FACADES_CLASSES,
    FACADES_PALETTE,
    SegmentationScores,
    colors_to_labels,
    confusion_matrix,
    scores_from_confusion,
    segmentation_scores,
)
from .weights import load_fid_inception

__all__ = [
    "FACADES_CLASSES",
    "FACADES_PALETTE",
    "METRICS",
    "Metric",
    "SegmentationScores",
    "colors_to_labels",
    "confusion_matrix",
    "describe_metrics",
    "feature_statistics",
    "fid_from_features",
    "fid_from_folders",
    "folder_features",
    "folder_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "get_metric",
    "kid",
    "kid_from_folders",
    "list_images",
    "load_fid_inception",
    "mmd2_unbiased",
    "scores_from_confusion",
    "segmentation_scores",
    "tensor_features",
]
