"""`cyclegan package`: a model folder that loads alone, offline, in a fresh process, with a truthful model card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan import machine
from cyclegan.cli import main
from cyclegan.errors import UserError

SRC = Path(__file__).resolve().parents[1] / "src"

FRESH_PROCESS = """
import socket, sys
sys.modules["huggingface_hub"] = None  # loading must not need the hub's client
def no_network(*a, **k):
    raise OSError("network used")
socket.socket.connect = socket.create_connection = no_network
import numpy as np
import cyclegan
model = cyclegan.load(sys.argv[1], device="cpu")
out = model.translate(sys.argv[2], direction="AtoB")
np.save(sys.argv[3], np.asarray(out))
print(out.size, out.mode)
"""


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """A 200-step tiny run (evaluated during training and by `cyclegan evaluate`), packaged with --license mit."""
    from conftest import TINY, write_images
    from cyclegan.config import build_config
    from cyclegan.train import train
    from cyclegan.train.evaluation import EvaluationHook

    tmp = tmp_path_factory.mktemp("package")
    root = tmp / "h2z"
    for folder, n, seed in (("trainA", 25, 1), ("trainB", 20, 2), ("testA", 3, 3), ("testB", 2, 4)):
        write_images(root / folder, n, seed=seed)
    cfg = build_config(
        [],
        [],
        [o for o in TINY if not o.startswith("optim.")]
        + [
            f"data.root={root}",
            "optim.n_epochs=4",
            "optim.n_epochs_decay=4",
            "train.max_steps=200",
            "train.threads=1",
            "train.log_every=10",
            "train.save_every_epochs=0",
            "train.eval_every_epochs=4",
            "train.eval_metric=cycle",
        ],
    )
    run = tmp / "run"
    train(cfg, run, hooks=EvaluationHook.from_config(cfg))
    assert main(["evaluate", str(run), "--data", str(root), "--metrics", "cycle", "--quiet", "--device", "cpu"]) == 0
    out = tmp / "pkg"
    assert main(["package", str(run), "--out", str(out), "--license", "mit", "--samples", "2"]) == 0
    return run, out


def test_a_packaged_200_step_run_loads_alone_in_a_fresh_process(packaged, tmp_path):
    run, pkg = packaged
    horse = tmp_path / "horse.png"
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (217, 301, 3), dtype=np.uint8)).save(horse)
    from cyclegan.translate import load_translator

    t = load_translator(run, "AtoB", device="cpu")  # the run's own model, for comparison
    expected = np.asarray(t.image(Image.open(horse)))
    alone = tmp_path / "elsewhere" / "model"
    shutil.copytree(pkg, alone)  # the folder alone: the run and its data are out of reach
    assert sorted(p.name for p in alone.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(alone), str(horse), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        # as many threads as computed `expected`: oneDNN's sums depend on the count, and a pixel can round either way
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": str(torch.get_num_threads()), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(301, 217) RGB"
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)  # the same model as the run's


def test_the_model_card_names_the_data_steps_and_figures_of_the_run(packaged):
    run, pkg = packaged
    card = (pkg / "README.md").read_text()
    config = json.loads((pkg / "config.json").read_text())
    assert config["step"] == 200 and config["directions"] == {"AtoB": "G_A", "BtoA": "G_B"}
    assert config["training"]["data"]["train A"] == {"folder": "h2z/trainA", "images": 25}
    assert "| train A | `h2z/trainA` | 25 |" in card and "| train B | `h2z/trainB` | 20 |" in card
    assert "| test A | `h2z/testA` | 3 |" in card
    assert config["epoch"] == 7 and "200 steps (7 full epochs)" in card  # 25 steps an epoch; stopped in the 8th
    wall = [json.loads(line).get("wall_s") for line in (run / "log.jsonl").read_text().splitlines()]
    wall = [w for w in wall if w is not None][-1]
    seconds = config["training"]["wall_seconds"]  # the card states the recorded (rounded) figure: one source
    assert seconds == round(wall, 1) and f"{seconds / 60:.1f} minutes of training" in card
    report = json.loads((run / "eval" / "latest" / "metrics.json").read_text())
    assert report["step"] == 200
    for d in ("AtoB", "BtoA"):
        assert f"{report['metrics'][d]['cycle_l1']:.4f}" in card
    assert f"Command: `cyclegan evaluate {report['checkpoint']} --test-a" in card and "--metrics cycle`" in card
    live = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if "eval/cycle" in line][-1]
    assert live["step"] == 100  # after epoch 4; the run stops at step 200, inside epoch 8, before its evaluation
    assert f"| cycle_l1 | {live['eval/AtoB/cycle_l1']:.4f} | {live['eval/BtoA/cycle_l1']:.4f} |" in card
    assert "train.eval_metric=cycle" in card
    started = machine.read(run)[0]  # the one start of the run: its machine, as `cyclegan check` says it
    assert f"Computed in precision `fp32`, on:\n\n- from step 0: {machine.describe(started)}\n" in card
    assert config["training"]["machines"] == [started]


def test_the_card_follows_the_hub_conventions(packaged):
    _, pkg = packaged
    card = (pkg / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\nlibrary_name: cyclegan\npipeline_tag: image-to-image\n")
    hub = pytest.importorskip("huggingface_hub")
    loaded = hub.ModelCard.load(pkg / "README.md")  # the hub's own parser of card metadata
    assert loaded.data.license == "mit" and loaded.data.library_name == "cyclegan"
    assert loaded.data.pipeline_tag == "image-to-image" and "cyclegan" in loaded.data.tags
    samples = Image.open(pkg / "samples.png")
    # 2 test images per direction, input | translation, 128 px each with 2 px padding: 4 rows, 2 columns
    assert samples.size == (2 * 130 + 2, 4 * 130 + 2) and np.asarray(samples).std() > 10


def test_translate_and_load_translator_take_the_folder(packaged, tmp_path, capsys):
    from cyclegan.translate import load_translator

    _, pkg = packaged
    t = load_translator(pkg, "BtoA", device="cpu")
    assert t.direction == "BtoA" and "step 200" in t.description
    src = tmp_path / "in"
    from conftest import write_images

    write_images(src, 2, size=(45, 33))
    assert main(["translate", "-c", str(pkg), str(src), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert Image.open(tmp_path / "out" / "img_000.png").size == (45, 33)


def test_package_refuses_a_folder_of_other_files_and_a_package(packaged, tmp_path):
    run, pkg = packaged
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds other files"):
        main(["package", str(run), "--out", str(tmp_path / "busy"), "--debug"])
    with pytest.raises(UserError, match="already a package folder"):
        main(["package", str(pkg), "--out", str(tmp_path / "again"), "--debug"])


def test_push_uploads_the_folder_with_the_hubs_client(packaged, monkeypatch, capsys):
    calls = []

    class HfApi:
        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create", repo_id, private, exist_ok))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=HfApi))
    from cyclegan.package import push

    _, pkg = packaged
    assert push(pkg, "me/h2z", private=True) == "https://huggingface.co/me/h2z"
    assert calls == [
        ("create", "me/h2z", True, True),
        ("upload", "me/h2z", ["README.md", "config.json", "model.safetensors", "samples.png"]),
    ]


def test_the_evaluation_page_shows_the_runs_curves(packaged):
    run, _ = packaged
    page = (run / "eval" / "latest" / "index.html").read_text()
    assert '<img src="../../plots/losses.png"' in page and '<img src="../../plots/metrics.png"' in page
    assert (run / "plots" / "metrics.png").is_file()  # the run evaluated during training (cycle, every 4 epochs)
