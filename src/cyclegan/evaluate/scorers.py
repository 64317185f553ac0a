"""One scorer per metric: each takes batches of (inputs, translations, reconstructions) of one direction and
returns named values; the maths is in `cyclegan.metrics` and `cyclegan.content`."""

from __future__ import annotations

import abc
import math
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..data.files import find_images, read_image
from ..errors import UserError
from ..registry import Registry
from .setup import OPPOSITE, EvalSetup, palette


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

    def __init__(
        self,
        reference: Path,
        which: tuple[str, ...],
        model,
        kid_subsets: int,
        kid_subset_size: int,
        *,
        batch_size: int = 50,
        protocol: str = "legacy",
    ):
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
            from ..metrics import folder_features

            self._real = folder_features(self.reference, self.model, batch_size=self.batch_size, protocol=self.protocol)
        return self._real

    def update(self, files, inputs, fakes, recs) -> None:
        from ..metrics import tensor_features

        x = fakes.float() / 255.0
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x[:, :3]  # as PIL's convert("RGB") on grey files
        self.features.append(tensor_features(self.model(), x, self.batch_size, self.protocol))

    def result(self) -> dict[str, float | None]:
        from ..metrics import fid_from_features, kid
        from ..metrics.caveats import (
            check_image_count,
            fid_small_sets_note,
            kid_std_note,
        )

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
        from ..metrics import confusion_matrix

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
        from ..metrics import scores_from_confusion

        conf = self.conf.copy()
        if self._first is not self._prev:  # two or more items: close the ring
            conf += self._score(self._prev[0], self._first[1])
        return {f"{prefix}{k}": v for k, v in scores_from_confusion(conf).to_dict().items()} if conf.sum() else {}


def _majority_scores(counts: np.ndarray, prefix: str) -> dict[str, float]:
    """The trivial predictor: every pixel labelled with the most frequent true class."""
    from ..metrics import scores_from_confusion

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
        from ..metrics import colors_to_labels, confusion_matrix

        k = len(self.colors)
        for f, fake in zip(files, fakes):
            if f.stem not in self.truth:
                raise UserError(f"seg: no ground truth for {f.name} in {self.truth_folder} (paired file names needed)")
            truth = read_image(self.truth[f.stem], 3)
            if self.resize and truth.shape[-2:] != fake.shape[-2:]:
                truth = TF.resize(truth, list(fake.shape[-2:]), interpolation=InterpolationMode.NEAREST_EXACT)
            if truth.shape[-2:] != fake.shape[-2:]:
                raise UserError(
                    f"seg: {self.truth[f.stem]} is {tuple(truth.shape[-2:])}, its translation "
                    f"{tuple(fake.shape[-2:])}; paired images must have the same size"
                )
            t = colors_to_labels(truth.permute(1, 2, 0).numpy(), self.colors)
            p = colors_to_labels(_rgb(fake).permute(1, 2, 0).numpy(), self.colors)
            self.conf += confusion_matrix(t, p, k)
            self.counts += np.bincount(t.ravel(), minlength=k)
            self.unaligned.add(t, t)

    def result(self) -> dict[str, float]:
        from ..metrics import scores_from_confusion

        return {
            **scores_from_confusion(self.conf).to_dict(),
            **_majority_scores(self.counts, "majority_"),
            **self.unaligned.scores("unaligned_"),
        }


class ContentScorer(Scorer):
    """Classifier accuracy on translations (and on the untranslated inputs) against source labels."""

    def __init__(self, classifier_path: str | Path, labels_path: Path, device):
        from ..content import load_classifier, read_labels

        self.classifier = load_classifier(classifier_path, device)
        self.labels = read_labels(labels_path)
        self.labels_path = labels_path
        k = len(self.classifier.classes)
        self.conf = torch.zeros(k, k, dtype=torch.long)  # [true, predicted] counts on the translations
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
            raise UserError(
                f"content: {bad[0][0]} has label {bad[0][1]} in {self.labels_path}, but the classifier "
                f"knows {k} classes (0-{k - 1}); fix the label or pass the classifier trained for these labels"
            )
        for conf, pred in (
            (self.conf, self.classifier.predict(fakes)),
            (self.conf_raw, self.classifier.predict(inputs)),
        ):
            conf += torch.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
        self.n += len(files)

    def result(self) -> dict[str, float]:
        return {
            "content_acc": int(self.conf.trace()) / self.n,
            "content_untranslated": int(self.conf_raw.trace()) / self.n,
        }

    def details(self) -> dict:
        """Per-class accuracy (translated and untranslated) and the most frequent confusions."""
        names, conf, raw = self.classifier.classes, self.conf, self.conf_raw
        rows = conf.sum(1)
        per_class = {
            names[c]: {
                "images": int(rows[c]),
                "translated": int(conf[c, c]) / int(rows[c]),
                "untranslated": int(raw[c, c]) / int(rows[c]),
            }
            for c in range(len(names))
            if rows[c]
        }
        off = conf.clone().fill_diagonal_(0)
        order = off.flatten().argsort(descending=True)[:10]
        k = len(names)
        top = [
            {"true": names[int(i) // k], "predicted": names[int(i) % k], "count": int(off.flatten()[i])}
            for i in order
            if off.flatten()[i] > 0
        ]
        return {
            "content": {
                "per_class": per_class,
                "top_confusions": top,
                "confusion": conf.tolist(),
                "classes": list(names),
            }
        }


class FcnScorer(Scorer):
    """FCN-score: a segmenter labels the translations (photos made from label maps), scored against those label
    maps; the same segmenter on the paired real photos (the ceiling) and, as the unaligned baseline, on the real
    photo of the next label map (realistic, but ignoring the input); and the all-majority predictor."""

    def __init__(self, segmenter_path: str | Path, colors: np.ndarray, real_folder: Path, device):
        from ..segmenter import load_segmenter

        self.segmenter = load_segmenter(segmenter_path, device)
        k = len(self.segmenter.classes)
        if k != len(colors):
            raise UserError(
                f"fcn: {segmenter_path} knows {k} classes, the palette {len(colors)} colours; "
                "pass the --palette of the label maps it was trained on"
            )
        self.colors = colors
        self.real = {p.stem: p for p in find_images(real_folder, "real target photos")} if real_folder.is_dir() else {}
        self.conf = np.zeros((k, k), np.int64)
        self.conf_real = np.zeros((k, k), np.int64)
        self.counts = np.zeros(k, np.int64)
        self.unaligned = _Unaligned(k)

    def update(self, files, inputs, fakes, recs) -> None:
        from ..metrics import colors_to_labels, confusion_matrix

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
        from ..metrics import scores_from_confusion

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


# A metric's factory: (setup, direction, has_reconstruction=..., inception=...) -> its scorer for that direction,
# or None where the metric does not score it. fid and kid share one scorer (the same Inception features).
SCORERS: Registry[Scorer | None] = Registry("metric")


@SCORERS.register("fid")
@SCORERS.register("kid")
def _inception(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer:
    if inception is None:
        from ..metrics.features import InceptionLoader

        inception = InceptionLoader(setup.inception_weights, setup.device)
    which = tuple(m for m in ("fid", "kid") if m in setup.metrics)
    return InceptionScorer(setup.reference(direction[-1]), which, inception, setup.kid_subsets, setup.kid_subset_size)


@SCORERS.register("fid_clean")
def _fid_clean(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer:
    if inception is None:
        from ..metrics.features import InceptionLoader

        inception = InceptionLoader(setup.inception_weights, setup.device)
    return InceptionScorer(setup.reference(direction[-1]), ("fid",), inception, 1, 2, protocol="clean")


@SCORERS.register("seg")
def _seg(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer | None:
    if direction != setup.seg_direction:
        return None
    return SegScorer(setup.folder(direction[-1]), palette(setup.palette), resize=bool(setup.size))


@SCORERS.register("content")
def _content(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer | None:
    src, dst = direction[0], direction[-1]
    clf = setup.classifier_b if dst == "B" else setup.classifier_a
    if not clf:
        return None
    labels = (setup.labels_a if src == "A" else setup.labels_b) or setup.folder(src) / "labels.csv"
    return ContentScorer(clf, Path(labels), setup.device or "cpu")


@SCORERS.register("fcn")
def _fcn(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer | None:
    if direction != OPPOSITE[setup.seg_direction]:
        return None
    return FcnScorer(setup.segmenter, palette(setup.palette), setup.folder(direction[-1]), setup.device or "cpu")


@SCORERS.register("cycle")
def _cycle(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> Scorer | None:
    return CycleScorer() if has_reconstruction else None


def build_scorers(setup: EvalSetup, direction: str, *, has_reconstruction: bool, inception=None) -> list[Scorer]:
    """The scorers of `setup.metrics`, in its order, that apply to `direction` (fid and kid share one)."""
    scorers: list[Scorer] = []
    made = set()
    for name in setup.metrics:
        factory = SCORERS.get(name)
        if factory in made:
            continue
        made.add(factory)
        scorer = factory(setup, direction, has_reconstruction=has_reconstruction, inception=inception)
        if scorer is not None:
            scorers.append(scorer)
    return scorers
