"""`make_study`: write a real-vs-fake study as a self-contained folder that opens from disk in any browser.

The folder holds `index.html`, `study.js`, `study.css` (from `assets/`), `trials.js` (every participant's
seeded sequence, read by the page as a script because browsers refuse `fetch` on file:// pages),
`images/` (real images and translations under opaque names, so a file name does not give the answer away)
and `study.json` (the same sequences plus where each image came from, for the experimenter).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

from ..data.files import ImageReadError, find_images, read_image
from ..errors import UserError
from .design import StudyDesign, participant_sequence

BROWSER_FORMATS = (".jpg", ".jpeg", ".png", ".webp")  # copied as they are; other formats become PNG
ASSETS = ("index.html", "study.js", "study.css")


def _image_id(seed: int, role: str, path: Path) -> str:
    return hashlib.sha256(f"{seed}:{role}:{path.resolve()}".encode()).hexdigest()[:16]


def _copy_image(src: Path, images: Path, image_id: str, size: int) -> str:
    """Copy (or convert / resize to size x size, bicubic) one image into images/; returns its file name."""
    if not size and src.suffix.lower() in BROWSER_FORMATS:
        name = image_id + src.suffix.lower()
        shutil.copyfile(src, images / name)
        return name
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    from ..translate import save_image

    try:
        image = read_image(src, 3)
    except ImageReadError as e:
        raise UserError(f"study: {e}; remove or replace it") from None
    if size:
        image = TF.resize(image, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True)
    name = image_id + ".png"
    save_image(image, images / name)
    return name


def _check_options(participants: int, practice: int, trials: int, show_ms: int, feedback_ms: int, size: int) -> None:
    if participants < 1:
        raise UserError(f"--participants must be at least 1, got {participants}")
    if practice < 0 or trials < 1:
        raise UserError(f"--practice must be 0 or more and --trials at least 1, got {practice} and {trials}")
    if show_ms < 1 or feedback_ms < 0:
        raise UserError(f"--show-ms must be at least 1 and --feedback-ms 0 or more, got {show_ms} and {feedback_ms}")
    if size < 0:
        raise UserError(f"--size must be 0 (keep each image's size) or more, got {size}")


def make_study(
    real: str | Path,
    fakes: dict[str, str | Path],
    out: str | Path,
    *,
    participants: int = 50,
    practice: int = 10,
    trials: int = 40,
    show_ms: int = 1000,
    feedback_ms: int = 1000,
    size: int = 0,
    display: int = 256,
    seed: int = 0,
    title: str = "Which image is real?",
) -> Path:
    """Write the study folder `out` (which must not exist or be empty); returns its index.html.

    real: folder of real target-domain images. fakes: method name -> folder of its translations.
    participants: how many numbered sequences to prepare (participant p tests method (p - 1) mod #methods).
    practice, trials: trials per session with feedback, and scored ones (the paper: 10 and 40).
    show_ms: how long each pair is shown (the paper: 1 s); feedback_ms: how long practice feedback stays.
    size: resize every image to size x size (0: keep), so that a resolution difference gives nothing away;
    display: the on-screen width and height of each image, in CSS pixels.
    """
    _check_options(participants, practice, trials, show_ms, feedback_ms, size)
    if not fakes:
        raise UserError("study: give at least one folder of translations (--fake NAME=DIR)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"study: {out} exists and is not an empty folder; choose a new output folder")
    real_files = find_images(real, "study: real images")
    fake_files = {name: find_images(folder, f"study: translations of {name}") for name, folder in fakes.items()}
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    sources: dict[str, dict] = {}

    def add(src: Path, role: str, method: str | None) -> str:
        name = _copy_image(src, images, _image_id(seed, role, src), size)
        sources[name] = {"role": role, "method": method, "source": str(src)}
        return name

    real_ids = {f.stem: add(f, "real", None) for f in real_files}
    pairs, pairing = {}, {}
    for method, files in fake_files.items():
        paired = all(f.stem in real_ids for f in files)  # same file names: the real image of the same input
        pairing[method] = "by file name" if paired else "random real image per trial"
        pairs[method] = tuple((real_ids[f.stem] if paired else None, add(f, f"fake:{method}", method)) for f in files)
    design = StudyDesign(tuple(fakes), pairs, tuple(real_ids.values()), practice, trials, seed)
    sequences = {
        str(p): {"method": design.method_of(p), "trials": [t.to_dict() for t in participant_sequence(design, p)]}
        for p in range(1, participants + 1)
    }
    study_id = hashlib.sha256(json.dumps([seed, sorted(sources)]).encode()).hexdigest()[:12]
    page = {
        "study": study_id,
        "title": title,
        "show_ms": show_ms,
        "feedback_ms": feedback_ms,
        "display": display,
        "practice": practice,
        "trials": trials,
        "methods": list(fakes),
        "participants": sequences,
    }
    (out / "trials.js").write_text("window.STUDY = " + json.dumps(page) + ";\n")
    (out / "study.json").write_text(
        json.dumps(
            {
                **page,
                "seed": seed,
                "pairing": pairing,
                "images": sources,
                "real_folder": str(real),
                "fake_folders": {k: str(v) for k, v in fakes.items()},
            },
            indent=1,
        )
        + "\n"
    )
    for asset in ASSETS:
        (out / asset).write_text(resources.files(__package__).joinpath("assets", asset).read_text())
    return out / "index.html"


__all__ = ["make_study"]
