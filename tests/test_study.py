"""The real-vs-fake study: seeded sequences, scoring by hand-checked numbers, and the page in headless Chromium."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FACADES, TINY, needs_facades, write_images
from cyclegan.errors import UserError
from cyclegan.study import StudyDesign, make_study, participant_sequence, read_answers, score_answers, score_table
from cyclegan.study.score import t975


def _design(n_fakes=7, methods=("a", "b"), paired=True):
    pairs = {m: tuple((f"r{i}" if paired else None, f"{m}{i}") for i in range(n_fakes)) for m in methods}
    return StudyDesign(methods, pairs, tuple(f"r{i}" for i in range(n_fakes)), practice=10, trials=40, seed=3)


def test_sequence_is_seeded_per_participant_and_uses_each_translation_before_repeating():
    d = _design()
    one, again, other = participant_sequence(d, 1), participant_sequence(d, 1), participant_sequence(d, 3)
    assert one == again and one != other
    assert [t.practice for t in one] == [True] * 10 + [False] * 40
    assert {t.method for t in one} == {"a"} and {t.method for t in participant_sequence(d, 2)} == {"b"}
    fakes = [t.fake for t in one]
    for start in range(0, 49, 7):  # 7 translations: each block of 7 trials shows each exactly once
        block = fakes[start : start + 7]
        assert len(block) < 7 or sorted(block) == sorted(f"a{i}" for i in range(7))
    assert all(t.real == "r" + t.fake[1:] for t in one)  # paired by name
    sides = [t.real_side for t in one]
    assert set(sides) == {"left", "right"} and 10 <= sides.count("left") <= 40


def test_unpaired_translations_draw_a_real_image_per_trial():
    seq = participant_sequence(_design(paired=False), 2)
    assert len({t.real for t in seq}) > 3 and all(t.real.startswith("r") for t in seq)


def _answers(participant, method, fooled_flags, practice=2, study="s1"):
    trials = [
        {
            "index": i,
            "practice": True,
            "method": method,
            "real": "r",
            "fake": "f",
            "real_side": "left",
            "answer": "right",
        }
        for i in range(practice)
    ]  # practice answers, all wrong: must not count
    for j, fooled in enumerate(fooled_flags):
        trials.append(
            {
                "index": practice + j,
                "practice": False,
                "method": method,
                "real": "r",
                "fake": "f",
                "real_side": "right",
                "answer": "left" if fooled else "right",
            }
        )
    return {
        "format": "cyclegan-study-answers/1",
        "study": study,
        "participant": participant,
        "method": method,
        "trials": trials,
    }


def test_score_is_the_mean_over_participants_with_a_t_interval(tmp_path):
    files = []
    for p, flags, method in (
        (1, [1, 1, 0, 0, 0, 0, 0, 0], "cyclegan"),
        (3, [1, 1, 1, 0, 0, 0, 0, 0], "cyclegan"),
        (5, [1, 1, 1, 1, 0, 0, 0, 0], "cyclegan"),
        (2, [0] * 8, "pix2pix"),
    ):
        files.append(tmp_path / f"p{p}.json")
        files[-1].write_text(json.dumps(_answers(p, method, flags)))
    rows = score_answers(read_answers(files))
    cg, p2p = rows
    assert (cg.method, cg.participants, cg.trials) == ("cyclegan", 3, 24)
    assert cg.fooled == pytest.approx(0.375) and cg.per_participant == {1: 0.25, 3: 0.375, 5: 0.5}
    se = 0.125 / math.sqrt(3)  # sd of (0.25, 0.375, 0.5) is 0.125
    assert cg.stderr == pytest.approx(se) and cg.ci95 == pytest.approx((0.375 - 4.303 * se, 0.375 + 4.303 * se))
    assert p2p.fooled == 0.0 and p2p.ci95 is None and math.isnan(p2p.stderr)
    table = score_table(rows)
    assert "| cyclegan | 3 | 24 | 37.5% | 7.2% |" in table and "- (one participant)" in table


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 5, 9, 24, 30, 60, 120):
        assert t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4)
    assert t975(45) == t975(40) > stats.t.ppf(0.975, 45)  # conservative between table entries


def test_answer_files_are_checked(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_answers(1, "m", [1])))
    with pytest.raises(UserError, match="the same participant 1"):
        read_answers([a, a])
    b = tmp_path / "b.json"
    b.write_text(json.dumps(_answers(2, "m", [1], study="other")))
    with pytest.raises(UserError, match="different studies"):
        read_answers([a, b])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "x"}))
    with pytest.raises(UserError, match="not a study answers file"):
        read_answers([bad])


def test_make_refuses_a_non_empty_folder_and_hides_names(tmp_path):
    write_images(tmp_path / "real", 3, size=(20, 20))
    write_images(tmp_path / "fake", 3, size=(20, 20), seed=5)
    index = make_study(
        tmp_path / "real", {"m": tmp_path / "fake"}, tmp_path / "s", participants=2, practice=1, trials=2
    )
    manifest = json.loads((tmp_path / "s" / "study.json").read_text())
    assert manifest["pairing"] == {"m": "by file name"} and len(manifest["images"]) == 6
    assert not any("img_" in p.name for p in (tmp_path / "s" / "images").iterdir())
    assert index.read_text().count("<script") == 2
    with pytest.raises(UserError, match="not an empty folder"):
        make_study(tmp_path / "real", {"m": tmp_path / "fake"}, tmp_path / "s")


def _facades_halves(out: Path, n: int, size: int) -> tuple[Path, Path]:
    """photos/ and labels/ from the first n facades test pairs (photo left, label map right), size x size."""
    for i in range(1, n + 1):
        ab = Image.open(FACADES / "test" / f"{i}.jpg").convert("RGB")
        w = ab.width // 2
        for name, box, resample in (
            ("photos", (0, 0, w, ab.height), Image.BICUBIC),
            ("labels", (w, 0, 2 * w, ab.height), Image.NEAREST),
        ):
            (out / name).mkdir(parents=True, exist_ok=True)
            ab.crop(box).resize((size, size), resample).save(out / name / f"{i}.png")
    return out / "photos", out / "labels"


@needs_facades
def test_study_page_in_chromium_scripted_participant_answers_left(tmp_path):
    """A study of facades test photos against a (briefly) trained CycleGAN's labels->photo translations: two
    scripted participants always click "left"; their downloaded answers must follow the known sequence, and the
    score must be the share of scored trials whose real image was on the right."""
    from browser import chromium_page
    from cyclegan.cli import main
    from cyclegan.config import build_config
    from cyclegan.train import train

    photos, labels = _facades_halves(tmp_path / "facades", 6, 64)
    data = tmp_path / "data"  # A = label maps, B = photos
    data.mkdir()
    for split in ("trainA", "testA"):
        (data / split).symlink_to(labels)
    for split in ("trainB", "testB"):
        (data / split).symlink_to(photos)
    train(
        build_config(
            [], [], TINY + [f"data.root={data}", "train.max_steps=3", "data.load_size=64", "data.crop_size=64"]
        ),
        tmp_path / "run",
    )
    assert (
        main(
            [
                "translate",
                "-c",
                str(tmp_path / "run"),
                str(labels),
                "--out",
                str(tmp_path / "fake"),
                "--no-gallery",
                "--direction",
                "AtoB",
            ]
        )
        == 0
    )
    study = tmp_path / "study"
    assert (
        main(
            [
                "study",
                "make",
                "--real",
                str(photos),
                "--fake",
                f"cyclegan={tmp_path / 'fake'}",
                "--out",
                str(study),
                "--participants",
                "2",
                "--practice",
                "3",
                "--trials",
                "8",
                "--show-ms",
                "40",
                "--feedback-ms",
                "0",
            ]
        )
        == 0
    )
    manifest = json.loads((study / "study.json").read_text())
    assert manifest["pairing"] == {"cyclegan": "by file name"}
    files = []
    with chromium_page() as page:
        for participant in (1, 2):
            page.goto((study / "index.html").as_uri() + f"?participant={participant}")
            page.click("#begin")
            assert page.text_content("#progress") == "Practice 1 of 3"
            for _ in range(11):
                page.wait_for_selector("#question:not([hidden])")
                page.click("#left")
            with page.expect_download() as info:
                page.click("#download")
            files.append(tmp_path / f"answers-{participant}.json")
            info.value.save_as(files[-1])
            assert page.is_visible("#done")
    for participant, path in zip((1, 2), files):
        answers = json.loads(path.read_text())
        known = manifest["participants"][str(participant)]["trials"]
        assert [t["real_side"] for t in answers["trials"]] == [t["real_side"] for t in known]
        assert [(t["real"], t["fake"]) for t in answers["trials"]] == [(t["real"], t["fake"]) for t in known]
        assert all(t["answer"] == "left" and t["fooled"] == (t["real_side"] == "right") for t in answers["trials"])
        assert all(t["shown_ms"] >= 35 for t in answers["trials"])
    rows = score_answers(read_answers(files, study))
    expected = [
        np.mean([t["real_side"] == "right" for t in manifest["participants"][p]["trials"] if not t["practice"]])
        for p in ("1", "2")
    ]
    assert rows[0].per_participant == pytest.approx({1: expected[0], 2: expected[1]})
    assert rows[0].fooled == pytest.approx(np.mean(expected)) and rows[0].trials == 16
    assert main(["study", "score", *map(str, files), "--study", str(study)]) == 0
