"""The command line as a user runs it: train, translate, list, and every bad input."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, write_images
from cyclegan.cli import COMMANDS, build_parser, main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    for split, n, seed in (("trainA", 4, 1), ("trainB", 4, 2), ("testA", 3, 3), ("testB", 2, 4)):
        write_images(data / split, n, seed=seed)
    sets = [a for o in TINY for a in ("--set", o)]
    assert main(["train", str(data), "--run-dir", str(root / "run"), "--preset", "quick", *sets]) == 0
    return root


def _command_names() -> list[str]:
    return [importlib.import_module(m).NAME for m in COMMANDS]


def _sub_actions(parser) -> dict:
    sub = next(a for a in parser._actions if a.dest == "command")
    return {c.dest: c.help for c in sub._choices_actions}


def test_help_works_as_a_program_without_importing_torch():
    """`cyclegan --help` lists every command; it and every command's own --help start without torch (a fraction
    of a second, not the ~6 s of importing torch and torchvision on a slow CPU)."""
    probe = "import sys\nfrom cyclegan.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    probe += "print('torch imported' if 'torch' in sys.modules else 'torch not imported')"
    out = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("torch not imported\n")
    lines = out.stdout.splitlines()
    for command in _command_names():  # each with its help on its own line (argparse put 'translate's below it)
        assert any(re.fullmatch(rf"    {command} +\S.*", line) for line in lines), command
    for command in _command_names():
        out = subprocess.run(
            [sys.executable, "-c", probe, command, "--help"], capture_output=True, text=True, timeout=300
        )
        assert f"usage: cyclegan {command}" in out.stdout, out.stderr
        assert out.stdout.endswith("torch not imported\n"), command


def test_evaluate_help_lists_every_metric_with_its_definition(capsys):
    """The metric list in `evaluate --help` comes from the torch-free catalogue, the same one the evaluation
    and the metrics registry read: every metric with its text, fid/kid/seg with their definitions."""
    from cyclegan.metric_catalog import DEFINITIONS, EVAL_METRICS
    from cyclegan.metrics import METRICS

    assert {name: m.description for name, m in METRICS.items()} == DEFINITIONS
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in EVAL_METRICS:
        assert f" {name}: " in text, name
    assert "Frechet Inception Distance (Heusel et al. 2017)" in text and "unbiased MMD^2" in text


def test_an_unknown_palette_is_refused_before_any_translation(trained_run, capsys):
    argv = ["evaluate", str(trained_run / "run"), "--data", str(trained_run / "data"), "--out", str(trained_run / "e")]
    assert main([*argv, "--metrics", "seg", "--palette", "cmp"]) != 0
    assert "unknown palette 'cmp'; choose from: facades" in capsys.readouterr().err
    assert not (trained_run / "e").exists()


def test_the_listing_without_options_equals_the_full_parser():
    assert _sub_actions(build_parser("")) == _sub_actions(build_parser())
    assert list(_sub_actions(build_parser())) == _command_names()
    assert all(_sub_actions(build_parser()).values())  # every command has its line


@pytest.mark.parametrize("argv", [[name] for name in _command_names()] + [["study", "make"], ["study", "score"]])
def test_help_of_every_command(argv, capsys):
    with pytest.raises(SystemExit) as exit_:  # `study --help` once crashed on a bare % in a help string
        main([*argv, "--help"])
    assert exit_.value.code == 0 and f"usage: cyclegan {' '.join(argv)}" in capsys.readouterr().out


def test_train_then_translate(trained_run, capsys):
    run = trained_run / "run"
    assert (run / "checkpoints" / "latest.model.safetensors").is_file()
    out = trained_run / "out"
    assert (
        main(
            ["translate", "-c", str(run), "--direction", "BtoA", str(trained_run / "data" / "testB"), "--out", str(out)]
        )
        == 0
    )
    assert sorted(p.name for p in out.glob("*.png")) == ["img_000.png", "img_001.png"]
    assert Image.open(out / "img_000.png").size == (40, 36)  # the input's own size
    assert "2 images written" in capsys.readouterr().out
    bf16 = trained_run / "out_bf16"
    assert (
        main(
            [
                "translate",
                "-c",
                str(run),
                "--direction",
                "BtoA",
                str(trained_run / "data" / "testB"),
                "--out",
                str(bf16),
                "--precision",
                "bf16",
                "--no-gallery",
            ]
        )
        == 0
    )
    a, b = (np.asarray(Image.open(d / "img_000.png")).astype(int) for d in (out, bf16))
    assert a.shape == b.shape and np.abs(a - b).mean() < 2


def test_existing_run_needs_resume(trained_run, capsys):
    code = main(["train", str(trained_run / "data"), "--run-dir", str(trained_run / "run")])
    assert code == 2 and "already holds a run; continue it with --resume" in capsys.readouterr().err


def test_resume_extends_training(trained_run, capsys):
    run = trained_run / "run"
    assert main(["train", "--resume", str(run), "--epochs-decay", "2", "--no-progress"]) == 0
    assert "finished at step 12 (after epoch 3/3)" in capsys.readouterr().out


def test_resume_with_a_schedule_shorter_than_the_run_is_refused(trained_run, capsys):
    run = trained_run / "run"
    before = (run / "config.json").read_text()
    err = _err(["train", "--resume", str(run), "--epochs", "1", "--epochs-decay", "0", "--no-progress"], capsys)
    epochs = json.loads(before)["optim"]
    at = epochs["n_epochs"] + epochs["n_epochs_decay"]  # finished: it stands at the end of its schedule
    assert f"has reached epoch {at}, beyond the 1 epoch(s) of the schedule" in err and f"at least {at}" in err
    assert (run / "config.json").read_text() == before  # the run is left as it was


def _err(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_resume_after_max_steps_config_trouble_and_another_folder(tmp_path, capsys, monkeypatch):
    """The hint printed at --max-steps works as printed; a broken or lost config.json; a resume
    started from another working directory (the data path was given relatively)."""
    for split, n in (("trainA", 4), ("trainB", 4)):
        write_images(tmp_path / "data" / split, n, seed=n)
    monkeypatch.chdir(tmp_path)
    sets = [a for o in TINY for a in ("--set", o)]
    assert main(["train", "data", "--run-dir", "run", "--preset", "quick", "--max-steps", "3", *sets]) == 0
    assert "continue with: cyclegan train --resume run" in capsys.readouterr().out
    assert json.loads(Path("run/config.json").read_text())["data"]["root"] == str(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "data")
    assert main(["train", "--resume", "../run", "--max-steps", "5"]) == 0  # a limit given again is kept
    assert "stopped early at step 5 (in epoch 2/2)" in capsys.readouterr().out
    assert "already stands at step 5" in _err(["train", "--resume", "../run", "--max-steps", "4"], capsys)
    Path("../run/config.json").write_text("{broken")
    assert "config.json is not valid JSON" in _err(["train", "--resume", "../run"], capsys)
    Path("../run/config.json").write_text('{"nosuch": {}}')
    assert "config.json: " in _err(["train", "--resume", "../run"], capsys)
    Path("../run/config.json").unlink()  # then the checkpoint's copy of the configuration is used
    assert main(["train", "--resume", "../run"]) == 0
    out = capsys.readouterr().out
    assert "continuing without a limit" in out and "finished at step 8 (after epoch 2/2)" in out


def test_bad_inputs_get_one_clear_line(tmp_path, trained_run, capsys):
    write_images(tmp_path / "ok" / "trainA", 2)
    (tmp_path / "ok" / "trainB").mkdir()
    r = str(tmp_path / "r")
    assert "trainB (looked for .jpg" in _err(["train", str(tmp_path / "ok"), "--run-dir", r], capsys)
    (tmp_path / "no_domains").mkdir()
    assert f"domain A: folder {tmp_path / 'no_domains' / 'trainA'} does not exist" in _err(
        ["train", str(tmp_path / "no_domains"), "--run-dir", r], capsys
    )
    assert "no training data" in _err(["train", "--run-dir", r], capsys)
    write_images(tmp_path / "small" / "trainA", 2, size=(20, 20))
    write_images(tmp_path / "small" / "trainB", 2, size=(20, 20))
    assert "smaller than the crop 256x256" in _err(
        ["train", str(tmp_path / "small"), "--run-dir", r, "--set", "data.preprocess=crop"], capsys
    )
    (tmp_path / "small" / "trainB" / "img_001.png").write_bytes(b"garbage")
    assert "img_001.png: cannot read image" in _err(
        ["train", str(tmp_path / "small"), "--run-dir", r, "--preset", "quick"], capsys
    )
    assert "model.generator='resnet_5' is not one of" in _err(
        ["train", str(tmp_path / "ok"), "--run-dir", r, "--set", "model.generator=resnet_5"], capsys
    )
    assert "unknown config key 'model.widht'" in _err(["train", "x", "--set", "model.widht=3"], capsys)
    assert "unknown preset 'fastest'" in _err(["train", "x", "--preset", "fastest"], capsys)
    assert "no config.json or checkpoints/latest.state.safetensors there" in _err(
        ["train", "--resume", str(tmp_path)], capsys
    )
    assert "not found" in _err(["translate", "-c", str(tmp_path / "none.safetensors"), "x", "--out", r], capsys)
    assert "no such file or folder" in _err(
        ["translate", "-c", str(trained_run / "run"), str(tmp_path / "missing.png"), "--out", r], capsys
    )
    assert "translates AtoB, BtoA, not XtoY" in _err(
        ["translate", "-c", str(trained_run / "run"), "--direction", "XtoY", "x", "--out", r], capsys
    )


def test_a_missing_training_folder_is_refused_before_any_output(tmp_path, capsys):
    (tmp_path / "file.png").write_bytes(b"x")
    for argv, message in [
        ([str(tmp_path / "nothing")], f"training data: {tmp_path / 'nothing'} does not exist"),
        (
            ["--data-a", str(tmp_path), "--data-b", str(tmp_path / "nope")],
            f"training data: {tmp_path / 'nope'} does not exist",
        ),
        ([str(tmp_path / "file.png")], f"training data: {tmp_path / 'file.png'} is not a folder"),
    ]:
        assert main(["train", *argv, "--run-dir", str(tmp_path / "r")]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == f"error: {message}\n"  # no "run directory: ..." line for a run that cannot start
    assert not (tmp_path / "r").exists()


def test_wrong_architecture_checkpoint(tmp_path, trained_run, capsys):
    from cyclegan import checkpoint as ckpt

    tree, meta = ckpt.load_model(trained_run / "run" / "checkpoints" / "latest.model.safetensors")
    meta["specs"]["G_A"]["kwargs"]["ngf"] = 8
    ckpt.save_tree(tmp_path / "wrong.model.safetensors", tree, meta)
    err = _err(
        [
            "translate",
            "-c",
            str(tmp_path / "wrong.model.safetensors"),
            str(trained_run / "data" / "testA"),
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert "weights of G_A do not fit its recorded architecture" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        main(["train", str(tmp_path / "none"), "--run-dir", str(tmp_path / "r"), "--debug"])


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "resnet_9blocks" in out and "cyclegan" in out and "quick" in out
    assert any(line.split() == ["palettes", "facades"] for line in out.splitlines())
    assert any(line.split() == ["augmentations", "color,", "translation,", "cutout"] for line in out.splitlines())


def test_ctrl_c_saves_and_exits_130_then_resume_goes_on(tmp_path):
    import os
    import signal
    import time

    for split in ("trainA", "trainB"):
        write_images(tmp_path / "data" / split, 4, seed=len(split))
    sets = [a for o in TINY + ["optim.n_epochs=500"] for a in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cyclegan",
            "train",
            str(tmp_path / "data"),
            "--run-dir",
            str(tmp_path / "run"),
            "--preset",
            "quick",
            *sets,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.time() + 120
    while not (log.is_file() and log.read_text().strip()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted at step" in out and "continue with: cyclegan train --resume" in out
    step = int(out.split("interrupted at step ")[1].split()[0])
    assert step >= 2 and (tmp_path / "run" / "checkpoints" / "latest.state.safetensors").is_file()
    assert main(["train", "--resume", str(tmp_path / "run"), "--max-steps", str(step + 2)]) == 0
