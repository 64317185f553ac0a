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

With `--probes`, G is also scored on altered inputs, to ask what it reads in F's photos and what real
photos lack: F's photos in greyscale and after DiffAugment's colour jitter (if G still reads them, it reads
shape, not a colour code), and real photos blurred (Gaussian, sigma 1, 2, 3 pixels), down- and upsampled
2x, or with each channel's mean and deviation set to those of F's photo of the same label map (if any of
these reads like F's photos, G needs that property).

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
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from cyclegan.augment import color
from cyclegan.data import find_images, read_image, to_float, to_uint8
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


def _grey(img: torch.Tensor) -> torch.Tensor:
    return img.float().mean(1, keepdim=True).round().to(torch.uint8).expand_as(img)


def _blurred(img: torch.Tensor, sigma: float) -> torch.Tensor:
    return TF.gaussian_blur(img.float(), [2 * round(2 * sigma) + 1] * 2, [sigma, sigma]).round().to(torch.uint8)


def _down_up(img: torch.Tensor) -> torch.Tensor:
    small = TF.resize(img, [img.shape[-2] // 2, img.shape[-1] // 2], antialias=True)
    return TF.resize(small, list(img.shape[-2:]), antialias=True)


def _matched(img: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """img with each channel's mean and standard deviation set to ref's (per image)."""
    x, r = to_float(img), to_float(ref)
    z = (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-6)
    return to_uint8(z * r.std((2, 3), keepdim=True) + r.mean((2, 3), keepdim=True))


# name -> (which input it alters: "F" = F(y), "real" = the real photo; the alteration (uint8 images, plus
# F(y) as a reference))
PROBES = {
    "G(grey F(y))": ("F", lambda img, fy: _grey(img)),
    "G(colour-jittered F(y))": ("F", lambda img, fy: to_uint8(color(to_float(img)))),
    **{f"G(real, blur sigma {s})": ("real", lambda img, fy, s=s: _blurred(img, s)) for s in (1, 2, 3)},
    "G(real, 2x down and up)": ("real", lambda img, fy: _down_up(img)),
    "G(real, F(y)'s colour stats)": ("real", _matched),
}


def diagnose(
    run: str | Path, data: str | Path, size: int, device: str = "cpu", probes: bool = False
) -> dict[str, dict[str, float]]:
    """Table 3 scores (and the majority baseline, and the best-relabelling oracle) of G(real photo) and of
    G(F(label map)), both against the test label maps, through `cyclegan evaluate`'s own seg scorer (which
    also gives the unaligned baseline: each test label map predicted by the next one); with `probes`, also
    of G on the altered inputs of PROBES."""
    g = load_translator(run, "AtoB", device)
    f = load_translator(run, "BtoA", device)
    truth = Path(data) / "testB"
    names = ("G(real photo)", "G(F(label map))", *(PROBES if probes else ()))
    scorers = {name: SegScorer(truth, FACADES_PALETTE, resize=True) for name in names}
    real = scorers["G(real photo)"]
    torch.manual_seed(0)  # the colour jitter's draws
    for [photo], x in iter_batches(find_images(Path(data) / "testA", "test photos"), 3, 1, size):
        real.update([photo], x, g(x).cpu(), None)  # names the photo whose label map is missing
        y = TF.resize(
            read_image(real.truth[photo.stem], 3), list(x.shape[-2:]), interpolation=InterpolationMode.NEAREST_EXACT
        )
        fy = f(y[None]).cpu()
        scorers["G(F(label map))"].update([photo], x, g(fy).cpu(), None)
        for name in names[2:]:
            source, alter = PROBES[name]
            scorers[name].update([photo], x, g(alter(fy if source == "F" else x, fy)).cpu(), None)
    return {
        name: {**sc.result(), "relabelled_per_pixel_acc": best_relabelling(sc.conf)[1]} for name, sc in scorers.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="run directory or .model.safetensors of a photos (A) <-> label maps (B) CycleGAN")
    ap.add_argument("--data", required=True, help="folder with testA (photos) and testB (label maps), paired by name")
    ap.add_argument(
        "--size",
        type=int,
        required=True,
        help="score at size x size (the training crop size), as `cyclegan evaluate --size` does",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--probes", action="store_true", help="also score G on altered inputs (see the top of this file)")
    args = ap.parse_args()
    result = diagnose(args.run, args.data, args.size, args.device, args.probes)
    for name, s in result.items():
        print(
            f"{name:30s} per-pixel {s['per_pixel_acc']:.3f}  per-class {s['per_class_acc']:.3f}  "
            f"IoU {s['class_iou']:.3f}  best relabelling {s['relabelled_per_pixel_acc']:.3f}"
        )
    s = result["G(real photo)"]
    for name, key in (("majority class", "majority"), ("another facade's map", "unaligned")):
        if f"{key}_per_pixel_acc" in s:
            print(
                f"{name:30s} per-pixel {s[f'{key}_per_pixel_acc']:.3f}  per-class {s[f'{key}_per_class_acc']:.3f}  "
                f"IoU {s[f'{key}_class_iou']:.3f}"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
