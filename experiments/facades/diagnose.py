"""Where does photo->labels fail: reading photos, or reading *real* photos?

Scores the photo->labels generator G twice with the paper's Table 3 protocol on the facades test pairs:
on the real test photos (what `cyclegan evaluate --metrics seg` reports), and on F(y), the photos that the
labels->photo generator F makes from the test label maps, against those same label maps (the backward
cycle y -> F(y) -> G(F(y)) read as a segmentation). When G reads F's photos well and real photos badly, G
has learned the code F writes, not what real facades look like: the gap is F's realism, not the cycle.

Two baselines come with them, from the seg scorer (`cyclegan evaluate --metrics seg` reports them too): the
majority predictor (every pixel the most frequent class), and a real but unaligned map: each test label map
predicted by the *next* test photo's label map (the last by the first). A G whose maps look like facades'
but ignore the photo's layout scores about that.

    python experiments/facades/diagnose.py RUN --data runs/facades/data --size 64

Inputs are read and resized by `cyclegan evaluate`'s own loader (photos to size x size, bicubic) except
the label maps fed to F, which are resized nearest-neighbour so that they keep the palette; ground truth
is resized nearest-neighbour. F's photos are rounded to 8 bits before G reads them, as a saved image would be.

Also printed, as an oracle diagnostic and never as a result: the per-pixel accuracy after the best
one-to-one relabelling of the predicted classes (chosen on the test labels themselves). When far above the
plain accuracy, it says that G's map follows the photo's layout but paints the regions in other classes'
colours, which an unpaired objective cannot rule out when those classes are about as frequent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from cyclegan.data import find_images, read_image
from cyclegan.evaluate import SegScorer, iter_batches
from cyclegan.metrics import FACADES_PALETTE
from cyclegan.translate import load_translator


def best_relabelling(conf: np.ndarray) -> tuple[list[int], float]:
    """The one-to-one map from predicted to true classes that puts the most pixels on the diagonal of the
    (true x predicted) confusion matrix, and the per-pixel accuracy it gives. Exact, by dynamic programming
    over sets of predicted classes (k 2^k steps: 49,152 for facades' 12 classes)."""
    k = conf.shape[0]
    best = {0: (0, [])}  # set of predicted classes used by true classes 0..n-1 -> (pixels, assignment)
    for t in range(k):
        nxt: dict[int, tuple[int, list[int]]] = {}
        for mask, (score, assign) in best.items():
            for p in range(k):
                if not mask >> p & 1:
                    cand = (score + int(conf[t, p]), assign + [p])
                    if cand[0] > nxt.get(mask | 1 << p, (-1,))[0]:
                        nxt[mask | 1 << p] = cand
        best = nxt
    score, assign = best[(1 << k) - 1]
    return assign, score / max(int(conf.sum()), 1)


def diagnose(run: str | Path, data: str | Path, size: int, device: str = "cpu") -> dict[str, dict[str, float]]:
    """Table 3 scores (and the majority baseline, and the best-relabelling oracle) of G(real photo) and of
    G(F(label map)), both against the test label maps, through `cyclegan evaluate`'s own seg scorer (which
    also gives the unaligned baseline: each test label map predicted by the next one)."""
    g = load_translator(run, "AtoB", device)
    f = load_translator(run, "BtoA", device)
    truth = Path(data) / "testB"
    scorers = {name: SegScorer(truth, FACADES_PALETTE, resize=True)
               for name in ("G(real photo)", "G(F(label map))")}
    real = scorers["G(real photo)"]
    for [photo], x in iter_batches(find_images(Path(data) / "testA", "test photos"), 3, 1, size):
        real.update([photo], x, g(x).cpu(), None)  # names the photo whose label map is missing
        y = TF.resize(read_image(real.truth[photo.stem], 3), list(x.shape[-2:]),
                      interpolation=InterpolationMode.NEAREST)
        scorers["G(F(label map))"].update([photo], x, g(f(y[None])).cpu(), None)
    return {name: {**sc.result(), "relabelled_per_pixel_acc": best_relabelling(sc.conf)[1]}
            for name, sc in scorers.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run directory or .model.safetensors of a photos (A) <-> label maps (B) CycleGAN")
    ap.add_argument("--data", required=True, help="folder with testA (photos) and testB (label maps), paired by name")
    ap.add_argument("--size", type=int, required=True,
                    help="score at size x size (the training crop size), as `cyclegan evaluate --size` does")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    result = diagnose(args.run, args.data, args.size, args.device)
    for name, s in result.items():
        print(f"{name:20s} per-pixel {s['per_pixel_acc']:.3f}  per-class {s['per_class_acc']:.3f}  "
              f"IoU {s['class_iou']:.3f}  best relabelling {s['relabelled_per_pixel_acc']:.3f}")
    s = result["G(real photo)"]
    for name, key in (("majority class", "majority"), ("another facade's map", "unaligned")):
        if f"{key}_per_pixel_acc" in s:
            print(f"{name:20s} per-pixel {s[f'{key}_per_pixel_acc']:.3f}  per-class {s[f'{key}_per_class_acc']:.3f}  "
                  f"IoU {s[f'{key}_class_iou']:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
