"""Curves on the results pages: smoothing, series read from log.jsonl, PNGs written and shown."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cyclegan import plots

RECORDS = [
    {"step": 2, "epoch": 0.2, "lr": 2e-4, "it_per_s": 3.0, "G_A": 1.0, "D_A": 0.5},
    {"step": 4, "epoch": 0.4, "lr": 2e-4, "it_per_s": 3.0, "G_A": 0.5, "D_A": 0.25, "wall_s": 1.5},
    {"step": 4, "eval/AtoB/cycle_l1": 0.3, "eval/BtoA/cycle_l1": 0.4, "eval/cycle": 0.35, "eval/epoch": 1},
    {"step": 5, "epoch_end": 1, "epoch/G_A": 0.7},
    {"step": 8, "eval/AtoB/cycle_l1": 0.2, "eval/BtoA/cycle_l1": float("nan"), "eval/cycle": 0.2, "eval/epoch": 2},
]


def test_smooth_is_a_debiased_moving_average():
    assert plots.smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])  # constant stays constant
    # m1 = 0.5 * 0 = 0 -> 0 / 0.5; m2 = 0.5 * 0 + 0.5 * 1 = 0.5 -> 0.5 / 0.75
    assert plots.smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    assert plots.smooth([1.0, 5.0], 0.0) == [1.0, 5.0]
    with pytest.raises(ValueError):
        plots.smooth([1.0], 1.0)
    assert plots.default_weight(5) == 0.0 and plots.default_weight(100) == pytest.approx(1 - 2 / 11)


def test_series_take_losses_from_loss_lines_and_metrics_per_direction():
    losses = plots.loss_series(RECORDS)
    assert losses == {"G_A": ([2, 4], [1.0, 0.5]), "D_A": ([2, 4], [0.5, 0.25])}  # no lr, it_per_s, epoch/, wall time
    metrics = plots.metric_series(RECORDS)
    assert metrics == {"cycle_l1": {"AtoB": ([4, 8], [0.3, 0.2]), "BtoA": ([4], [0.4])}}  # NaN left out


def test_pngs_and_the_page_fragment(tmp_path):
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + '{"step": 9, "G_')  # torn line
    page = tmp_path / "page"
    page.mkdir()
    fragment = plots.curves_html(tmp_path, page)
    assert '<img src="../plots/losses.png"' in fragment and '<img src="../plots/metrics.png"' in fragment
    losses = Image.open(tmp_path / "plots" / "losses.png")
    assert losses.size == (800, 280)  # two panels of 4 x 2.8 inches at 100 dpi
    assert np.asarray(losses.convert("L")).std() > 10  # drawn, not blank
    assert Image.open(tmp_path / "plots" / "metrics.png").size == (400, 280)
    (tmp_path / "log.jsonl").write_text("")
    assert plots.curves_html(tmp_path, page) == ""  # nothing logged yet: nothing shown


def test_train_writes_a_results_page_with_loss_curves(image_root, tiny_overrides, tmp_path, capsys):
    from cyclegan.cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(image_root),
                "--run-dir",
                str(run),
                "--no-progress",
                *[a for o in tiny_overrides for a in ("--set", o)],
            ]
        )
        == 0
    )
    assert f"results page: {run / 'index.html'}" in capsys.readouterr().out
    page = (run / "index.html").read_text()
    assert '<img src="plots/losses.png"' in page and '<img src="samples/epoch_0002.png">' in page
    assert Image.open(run / "plots" / "losses.png").size[0] >= 400
