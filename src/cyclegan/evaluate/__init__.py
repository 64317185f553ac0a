"""Evaluate a translation model on a test split: translate every image both ways, score, and show it.

setup.py says what to run on (`EvalSetup`, keyword-only) and checks it; scorers.py holds one scorer per metric
behind the `SCORERS` registry; run.py translates and feeds the scorers; report.py writes tables and pages.
"""

from ..metric_catalog import EVAL_METRICS, HEADLINE, LOWER_IS_BETTER, describe_metric, metric_help, parse_metrics
from . import paired  # noqa: F401  (registers psnr, ssim, lpips)
from .report import checkpoint_position, markdown_table
from .run import (
    LiveResult,
    default_out_dir,
    evaluate,
    evaluate_translators,
    headline_value,
    iter_batches,
)
from .scorers import SCORERS, FcnScorer, Scorer, SegScorer, build_scorers
from .setup import DIRECTIONS, OPPOSITE, PALETTES, EvalSetup, check_setup, test_folders

__all__ = [
    "DIRECTIONS",
    "EVAL_METRICS",
    "HEADLINE",
    "LOWER_IS_BETTER",
    "OPPOSITE",
    "PALETTES",
    "SCORERS",
    "EvalSetup",
    "FcnScorer",
    "LiveResult",
    "Scorer",
    "SegScorer",
    "build_scorers",
    "check_setup",
    "describe_metric",
    "checkpoint_position",
    "default_out_dir",
    "evaluate",
    "evaluate_translators",
    "headline_value",
    "iter_batches",
    "markdown_table",
    "metric_help",
    "parse_metrics",
    "test_folders",
]
