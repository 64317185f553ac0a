"""`cyclegan demo` (the README's first command) on a tiny setting, and what it may and may not delete."""

import json

from cyclegan.cli import main


def _err(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_demo_trains_translates_and_writes_a_results_page(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--images", "4", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"results page: {out / 'index.html'}" in printed
    page = (out / "index.html").read_text()
    assert 'href="translations/AtoB/index.html"' in page and "<img" in page
    assert '<img src="run/plots/losses.png"' in page  # the loss curves (cyclegan.plots)
    assert (out / "run" / "plots" / "losses.png").stat().st_size > 5000
    assert len(list((out / "translations" / "AtoB").glob("*.png"))) == 16
    assert json.loads((out / "run" / "config.json").read_text())["train"]["threads"] == 1
    # the same command again resumes the finished run (nothing to do); other settings need --fresh
    assert main(["demo", "--out", str(out), "--epochs", "1", "--images", "4"]) == 0
    printed = capsys.readouterr().out
    assert (
        "(resuming at step 8)" in printed and "already trained (8 steps); add --fresh to train again" in printed
    )  # 4 images x 2 epochs
    assert "add --fresh to start over" in _err(["demo", "--out", str(out), "--epochs", "2", "--images", "4"], capsys)
    (out / "run" / "stale.txt").write_text("x")
    assert main(["demo", "--out", str(out), "--epochs", "1", "--images", "3", "--fresh"]) == 0
    assert not (out / "run" / "stale.txt").exists() and len(list((out / "data" / "trainA").iterdir())) == 3


def test_demo_never_touches_a_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.txt").write_text("keep")
    for args in (["--out", str(mine)], ["--out", str(mine), "--fresh"]):
        assert "did not make" in _err(["demo", *args], capsys)
    monkeypatch.chdir(mine)
    assert "did not make" in _err(["demo", "--out", ".", "--fresh"], capsys)
    assert [p.name for p in mine.iterdir()] == ["chapter1.txt"] and (mine / "chapter1.txt").read_text() == "keep"
    lookalike = tmp_path / "project"  # a folder of the user's that happens to hold a data/ folder
    (lookalike / "data" / "trainA").mkdir(parents=True)
    (lookalike / "data" / "trainA" / "mine.png").write_text("x")
    for args in (["--out", str(lookalike)], ["--out", str(lookalike), "--fresh"]):
        assert "did not make" in _err(["demo", *args], capsys)
    assert [p.name for p in (lookalike / "data" / "trainA").iterdir()] == ["mine.png"]
    (tmp_path / "afile").write_text("x")
    assert "is a file" in _err(["demo", "--out", str(tmp_path / "afile")], capsys)
    assert "at least 1" in _err(["demo", "--out", str(tmp_path / "new"), "--epochs", "0"], capsys)
    assert "not a device name" in _err(["demo", "--out", str(tmp_path / "new2"), "--device", "gpu"], capsys)
    assert not (tmp_path / "new2").exists()
