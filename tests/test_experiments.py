"""The experiment scripts (experiments/): data preparation on the real data, the content classifier."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FACADES, MNIST_USPS, needs_facades
from cyclegan.content import load_classifier, read_labels
from cyclegan.metrics import FACADES_CLASSES, FACADES_PALETTE
from cyclegan.metrics.segmentation import colors_to_labels

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
needs_mnist_usps = pytest.mark.skipif(
    not (MNIST_USPS / "usps.npz").is_file(), reason=f"mnist_usps not found at {MNIST_USPS} (set CYCLEGAN_DATA)"
)


def load_script(relpath: str):
    """Import an experiments/ script as a module (they are scripts, not a package)."""
    path = EXPERIMENTS / relpath
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@needs_mnist_usps
def test_mnist_usps_prepare(tmp_path: Path):
    prepare = load_script("mnist_usps/prepare.py")
    assert prepare.main(["--data", str(MNIST_USPS), "--out", str(tmp_path)]) == 0
    counts = {"trainA": 5000, "testA": 5000, "trainB": 7291, "testB": 2007, "val/testA": 1000, "val/testB": 1000}
    for name, n in counts.items():
        labels = read_labels(tmp_path / name / "labels.csv")
        assert len(labels) == n == len(list((tmp_path / name).glob("*.png")))
        assert set(labels.values()) == set(range(10))
    # MNIST's first test image is a 7, its second a 2 (the well-known first rows of t10k)
    assert read_labels(tmp_path / "trainA" / "labels.csv")["00000"] == 7
    assert read_labels(tmp_path / "trainA" / "labels.csv")["00001"] == 2
    with Image.open(tmp_path / "testB" / "00000.png") as img:
        assert img.size == (32, 32) and img.mode == "L"
    # the validation split repeats training images (never test images): same pixels, same labels
    for domain in "AB":
        assert read_labels(tmp_path / "val" / f"test{domain}" / "labels.csv") == dict(
            list(read_labels(tmp_path / f"train{domain}" / "labels.csv").items())[:1000]
        )
        assert (tmp_path / "val" / f"test{domain}" / "00999.png").read_bytes() == (
            tmp_path / f"train{domain}" / "00999.png"
        ).read_bytes()


def _bar_digits(folder: Path, n: int, seed: int) -> None:
    """A learnable stand-in for digits: class c is a bright horizontal bar at row 1 + c (16x16 grey)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    lines = ["file,label"]
    for i in range(n):
        c = i % 10
        a = rng.integers(0, 40, (16, 16), dtype=np.uint8)
        a[1 + c, 2:14] = 255
        Image.fromarray(a, "L").save(folder / f"{i:03d}.png")
        lines.append(f"{i:03d}.png,{c}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("domain,extra", [("B", []), ("A", ["--augment", "affine", "--scale", "0.95", "1.05"])])
def test_train_classifier_script(tmp_path: Path, domain, extra):
    data = tmp_path / "data"
    for name, n, seed in ((f"train{domain}", 200, 0), ("testB", 50, 1), ("testA", 50, 2)):
        _bar_digits(data / name, n, seed)
    train = load_script("mnist_usps/train_classifier.py")
    out = tmp_path / "clf.safetensors"
    torch.manual_seed(0)
    assert (
        train.main(
            ["--data", str(data), "--out", str(out), "--epochs", "10", "--batch-size", "20", "--domain", domain, *extra]
        )
        == 0
    )
    report = json.loads(out.with_suffix(".json").read_text())
    mine, other = ("usps_test", "mnist_eval") if domain == "B" else ("mnist_eval", "usps_test")
    assert report[f"{'usps' if domain == 'B' else 'mnist'}_train_images"] == 200 and report[f"{mine}_images"] == 50
    floor = 0.7 if extra else 0.9  # bars are told apart by their row, which random shifts blur; chance is 0.1
    assert report[f"{mine}_accuracy"] > floor
    assert report[f"{other}_no_translation_accuracy"] > floor  # the other domain's bars are the same classes
    assert report["domain"] == domain and report.get("scale") == ([0.95, 1.05] if extra else None)
    clf = load_classifier(out)
    assert (clf.size, clf.channels, clf.classes) == (16, 1, [str(i) for i in range(10)])
    assert clf.net(torch.zeros(1, 1, 16, 16)).shape == (1, 10)


@needs_facades
def test_facades_prepare_clean_labels(tmp_path: Path):
    prepare = load_script("facades/prepare.py")
    assert prepare.main(["--data", str(FACADES), "--out", str(tmp_path), "--size", "32", "--clean-labels"]) == 0
    for phase, n in (("train", 400), ("test", 106)):
        photos = sorted(p.name for p in (tmp_path / f"{phase}A").iterdir())
        labels = sorted(p.name for p in (tmp_path / f"{phase}B").iterdir())
        assert photos == labels and len(photos) == n  # pairs keep their names: evaluate --metrics seg needs it
    with Image.open(sorted((tmp_path / "testB").iterdir())[0]) as img:
        assert img.size == (32, 32)
        colours = np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)
    palette = {tuple(c) for c in FACADES_PALETTE.tolist()}
    assert {tuple(c) for c in colours.tolist()} <= palette  # snapped: only palette colours left


def run_with_stubs(script: Path, tmp_path: Path, env: dict, cyclegan: str = "") -> list[list[str]]:
    """Run an experiment's shell script with `python` and `cyclegan` replaced by stubs that record their
    arguments (nothing trains); returns the recorded command lines in order. `cyclegan`: Python code the
    `cyclegan` stub runs after recording."""
    bin_dir, record = tmp_path / "bin", tmp_path / "commands.jsonl"
    bin_dir.mkdir()
    for name, then in (("python", ""), ("cyclegan", cyclegan)):
        stub = bin_dir / name
        stub.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            f"open({str(record)!r}, 'a').write(json.dumps([{name!r}] + sys.argv[1:]) + '\\n')\n" + then
        )
        stub.chmod(0o755)
    full_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
    subprocess.run(
        ["bash", str(script), str(tmp_path / "data_in"), str(tmp_path / "work")],
        env=full_env,
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.mark.parametrize(
    "env, expected",
    [
        (
            {},
            {
                "loss.lambda_a": 3.0,
                "loss.lambda_b": 3.0,
                "loss.lambda_identity": 0.0,
                "train.seed": 0,
                "optim.n_epochs": 4,
                "optim.n_epochs_decay": 4,
                "loss.lambda_semantic": 0.0,
                "optim.ema_decay": 0.0,
                "loss.cycle_noise": 0.0,
                "train.batch_size": 8,
                "optim.lr": 2e-4,
                "model.ndf": 16,
            },
        ),
        (
            {
                "CYCLE": "5",
                "SEMANTIC": "1",
                "SEED": "2",
                "EPOCHS": "5",
                "IDENTITY": "0.5",
                "EMA": "0.999",
                "NOISE": "0.1",
                "BATCH": "1",
                "LR": "1e-4",
                "NDF": "32",
            },
            {
                "loss.lambda_a": 5.0,
                "loss.lambda_b": 5.0,
                "loss.lambda_identity": 0.5,
                "train.seed": 2,
                "optim.n_epochs": 5,
                "optim.n_epochs_decay": 5,
                "loss.lambda_semantic": 1.0,
                "optim.ema_decay": 0.999,
                "loss.cycle_noise": 0.1,
                "train.batch_size": 1,
                "optim.lr": 1e-4,
                "model.ndf": 32,
            },
        ),
    ],
)
def test_mnist_usps_run_sh_sets_the_documented_fields(tmp_path: Path, env: dict, expected: dict):
    """run.sh's knobs (EPOCHS, IDENTITY, SEED, EMA, SEMANTIC, CYCLE, NOISE, BATCH, LR, NDF) reach the config fields
    they name, and every --set of its train command is a valid field: checked through the CLI's own config builder."""
    from cyclegan.cli import build_parser
    from cyclegan.commands.train import config_from_args

    commands = run_with_stubs(EXPERIMENTS / "mnist_usps" / "run.sh", tmp_path, env)
    train = [c for c in commands if c[:2] == ["cyclegan", "train"]]
    assert len(train) == 1
    classifiers = [c for c in commands if c[0] == "python" and c[1].endswith("train_classifier.py")]
    assert len(classifiers) == (2 if env.get("SEMANTIC", "0") != "0" else 1)  # the judge, and f for the semantic loss
    cfg = config_from_args(build_parser().parse_args(train[0][1:]))
    for dotted, value in expected.items():
        section, field = dotted.split(".")
        assert getattr(getattr(cfg, section), field) == value, dotted
    assert (cfg.train.eval_metric, cfg.model.generator) == ("content", "resnet_6blocks")
    evaluations = [c for c in commands if c[:2] == ["cyclegan", "evaluate"]]
    assert len(evaluations) == (3 if env.get("EMA", "0") != "0" else 2)


def test_mnist_usps_run_sh_continues_a_stopped_run(tmp_path: Path):
    """A run with a checkpoint and no score continues with `--resume` (its own config) instead of starting over,
    then is scored as usual: fidelity.sh's long runs outlast a session."""
    run = tmp_path / "work" / "cyclegan"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.state.safetensors").write_bytes(b"")
    commands = run_with_stubs(EXPERIMENTS / "mnist_usps" / "run.sh", tmp_path, {"SEED": "3"})
    assert [c for c in commands if c[:2] == ["cyclegan", "train"]] == [
        ["cyclegan", "train", "--resume", str(run), "--no-progress"]
    ]
    assert [c[2] for c in commands if c[:2] == ["cyclegan", "evaluate"]][0] == str(run)


def test_facades_diagnose_scores_the_real_photos_and_the_backward_cycle(tmp_path: Path, monkeypatch):
    """With stand-in generators (G: keep the image, F: turn every pixel to 'window'), G(real photo) is scored
    against the paired label map and G(F(y)) against y itself: known values on hand-made label maps."""
    diagnose = load_script("facades/diagnose.py")
    background, facade, window = (FACADES_PALETTE[FACADES_CLASSES.index(c)] for c in ("background", "facade", "window"))
    for phase in ("testA", "testB"):
        (tmp_path / phase).mkdir()
    label = np.empty((8, 8, 3), np.uint8)
    label[:2], label[2:] = background, facade  # 16 background pixels over 48 facade pixels
    photo = np.empty_like(label)
    photo[:4], photo[4:] = facade, window  # read as labels: right on rows 2-3 only (16 pixels of 64)
    Image.fromarray(label).save(tmp_path / "testB" / "1.png")
    Image.fromarray(photo).save(tmp_path / "testA" / "1.png")

    window_t = torch.tensor(window.tolist(), dtype=torch.uint8).view(1, 3, 1, 1)
    gens = {"AtoB": lambda x: x, "BtoA": lambda y: window_t.expand_as(y).clone()}
    monkeypatch.setattr(diagnose, "load_translator", lambda run, direction, device: gens[direction])
    result = diagnose.diagnose("run", tmp_path, size=8)
    real, cycle = result["G(real photo)"], result["G(F(label map))"]
    assert real["per_pixel_acc"] == pytest.approx(16 / 64)
    assert real["per_class_acc"] == pytest.approx((0 / 16 + 16 / 48) / 2)  # background never right, facade 16 of 48
    # best relabelling: window -> facade (32 pixels), facade -> background (16)
    assert real["relabelled_per_pixel_acc"] == pytest.approx(48 / 64)
    assert cycle["per_pixel_acc"] == 0.0  # G(F(y)) is all window, y has none
    gens["BtoA"] = lambda y: y  # F = identity: G(F(y)) = y exactly
    assert diagnose.diagnose("run", tmp_path, size=8)["G(F(label map))"]["per_pixel_acc"] == 1.0
    assert "unaligned_per_pixel_acc" not in real  # one photo: no other map to stand in for its own


def test_facades_diagnose_unaligned_baseline_scores_the_next_photos_true_map(tmp_path: Path, monkeypatch):
    """The unaligned baseline predicts each test photo's labels with the next photo's true map (the last
    with the first): known values on two hand-made pairs, independent of the generators."""
    diagnose = load_script("facades/diagnose.py")
    background, facade = (FACADES_PALETTE[FACADES_CLASSES.index(c)] for c in ("background", "facade"))
    for phase in ("testA", "testB"):
        (tmp_path / phase).mkdir()
    top = np.empty((8, 8, 3), np.uint8)
    top[:2], top[2:] = background, facade  # 16 background pixels over 48 facade pixels
    flat = np.empty_like(top)
    flat[:] = facade
    for name, label in (("1", top), ("2", flat)):
        Image.fromarray(label).save(tmp_path / "testB" / f"{name}.png")
        Image.fromarray(label).save(tmp_path / "testA" / f"{name}.png")
    monkeypatch.setattr(diagnose, "load_translator", lambda run, direction, device: lambda x: x)
    result = diagnose.diagnose("run", tmp_path, size=8)
    assert result["G(real photo)"]["per_pixel_acc"] == 1.0  # stand-in G returns the (label-coloured) photo
    real = result["G(real photo)"]
    # 1 predicted by 2 (all facade): 48 of 64 right; 2 predicted by 1: its 48 facade pixels right
    assert real["unaligned_per_pixel_acc"] == pytest.approx(96 / 128)
    assert real["unaligned_per_class_acc"] == pytest.approx((0 / 16 + 96 / 112) / 2)
    assert real["majority_per_pixel_acc"] == pytest.approx(112 / 128)


def test_facades_diagnose_probes(tmp_path: Path, monkeypatch):
    """--probes: on a flat facade-coloured photo and map with identity stand-ins for G and F, every alteration
    of the real photo keeps its colour (all right) and greyscale turns it into the palette class nearest to
    its grey; the helpers do what they say on known values."""
    diagnose = load_script("facades/diagnose.py")
    facade = FACADES_PALETTE[FACADES_CLASSES.index("facade")]
    for phase in ("testA", "testB"):
        (tmp_path / phase).mkdir()
        Image.fromarray(np.broadcast_to(facade, (8, 8, 3)).astype(np.uint8)).save(tmp_path / phase / "1.png")
    monkeypatch.setattr(diagnose, "load_translator", lambda run, direction, device: lambda x: x)
    result = diagnose.diagnose("run", tmp_path, size=8, probes=True)
    assert set(diagnose.PROBES) <= set(result)
    for name in diagnose.PROBES:
        if "real" in name:
            assert result[name]["per_pixel_acc"] == 1.0, name
    grey = np.full((1, 1, 3), round(float(facade.astype(np.float64).mean())), np.uint8)
    grey_is_facade = colors_to_labels(grey, FACADES_PALETTE)[0, 0] == FACADES_CLASSES.index("facade")
    assert result["G(grey F(y))"]["per_pixel_acc"] == float(grey_is_facade)

    img = torch.tensor([[[[10, 20]], [[30, 40]], [[50, 60]]]], dtype=torch.uint8)  # (1, 3, 1, 2)
    assert diagnose._grey(img).tolist() == [[[[30, 40]]] * 3]
    ref = torch.randint(0, 256, (1, 3, 6, 6), dtype=torch.uint8)
    matched = diagnose._matched(torch.randint(0, 256, (1, 3, 6, 6), dtype=torch.uint8), ref).float()
    assert torch.allclose(matched.mean((2, 3)), ref.float().mean((2, 3)), atol=1.0)
    assert torch.allclose(matched.std((2, 3)), ref.float().std((2, 3)), rtol=0.05)
    flat = torch.full((1, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(diagnose._blurred(flat, 2), flat) and torch.equal(diagnose._down_up(flat), flat)


def test_facades_best_relabelling_is_the_optimal_assignment():
    best_relabelling = load_script("facades/diagnose.py").best_relabelling
    swapped = np.array([[0, 30, 0], [10, 0, 0], [0, 0, 60]])  # classes 0 and 1 painted in each other's colour
    assign, acc = best_relabelling(swapped)
    assert assign == [1, 0, 2] and acc == 1.0
    rng = np.random.default_rng(0)
    for k in (4, 6):
        conf = rng.integers(0, 50, (k, k))
        brute = max(sum(conf[t, p] for t, p in enumerate(perm)) for perm in itertools.permutations(range(k)))
        assign, acc = best_relabelling(conf)
        assert sorted(assign) == list(range(k)) and acc == pytest.approx(brute / conf.sum())
    scipy_opt = pytest.importorskip("scipy.optimize")
    conf = rng.integers(0, 1000, (12, 12))
    rows, cols = scipy_opt.linear_sum_assignment(-conf)
    assert best_relabelling(conf)[1] == pytest.approx(conf[rows, cols].sum() / conf.sum())


def test_train_segmenter_script(tmp_path: Path, capsys):
    """Photos that show their label map's classes as two grey levels (rows of stripes): the segmenter learns them
    and reports its score on the real test photos; the file loads as a segmenter."""
    from safetensors import safe_open

    from cyclegan.segmenter import load_segmenter

    rng = np.random.default_rng(0)
    for phase, n in (("train", 24), ("test", 6)):
        for i in range(n):
            ids = np.kron(rng.integers(1, 3, (6, 1)), np.ones((4, 24), np.int64))  # facade (1) / window (2) rows
            photo = np.repeat(np.where(ids == 1, 60, 200).astype(np.uint8)[:, :, None], 3, 2)
            for side, image in (("A", photo), ("B", FACADES_PALETTE[ids].astype(np.uint8))):
                (tmp_path / f"{phase}{side}").mkdir(exist_ok=True)
                Image.fromarray(image).save(tmp_path / f"{phase}{side}" / f"{i}.png")
    train = load_script("facades/train_segmenter.py")
    torch.manual_seed(0)
    out = tmp_path / "seg.safetensors"
    assert (
        train.main(
            [
                "--data",
                str(tmp_path),
                "--out",
                str(out),
                "--crop",
                "16",
                "--epochs",
                "20",
                "--batch-size",
                "8",
                "--width",
                "4",
                "--lr",
                "0.02",
            ]
        )
        == 0
    )
    seg = load_segmenter(out)
    assert seg.classes == list(FACADES_CLASSES) and seg.palette == "facades"
    with safe_open(str(out), framework="pt") as f:
        info = json.loads(f.metadata()["cyclegan"])["info"]
    assert info["images"] == 24 and info["real_test_photos"]["per_pixel_acc"] > 0.9
    assert "real test photos: per-pixel" in capsys.readouterr().out


def test_horse2zebra_fidelity_sh_trains_each_precision_and_seed_at_the_same_budget(tmp_path: Path):
    """fidelity.sh's runs differ only in precision and seed: the paper's 128x128 setup, IMAGES images per domain for
    1 + 1 epochs, THREADS threads; each final model is scored by FID/KID at 128 (fields checked through the CLI's own
    config builder)."""
    from cyclegan.cli import build_parser
    from cyclegan.commands.train import config_from_args

    env = {"PRECISIONS": "fp32 auto wino", "SEEDS": "0 3", "IMAGES": "500", "THREADS": "2"}
    commands = run_with_stubs(EXPERIMENTS / "horse2zebra" / "fidelity.sh", tmp_path, env)
    train = [c for c in commands if c[:2] == ["cyclegan", "train"]]
    runs = []
    for command in train:
        cfg = config_from_args(build_parser().parse_args(command[1:]))
        assert (cfg.model.generator, cfg.data.crop_size, cfg.data.load_size) == ("resnet_6blocks", 128, 143)
        assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay, cfg.data.max_images) == (1, 1, 500)
        assert (cfg.train.threads, cfg.loss.lambda_identity, cfg.train.batch_size) == (2, 0.5, 1)
        runs.append((cfg.train.precision, cfg.train.winograd, cfg.train.channels_last, cfg.train.seed))
    # wino: what auto runs on a CPU without native bf16, asked for explicitly on any machine
    kinds = [("fp32", "auto", "auto"), ("auto", "auto", "auto"), ("fp32", "true", "true")]
    assert runs == [(*k, s) for s in (0, 3) for k in kinds]
    evaluations = [c for c in commands if c[:2] == ["cyclegan", "evaluate"]]
    names = [f"{p}_seed{s}" for s in (0, 3) for p in ("fp32", "auto", "wino")]
    assert [c[2] for c in evaluations] == [str(tmp_path / "work" / n) for n in names]
    assert all(c[c.index("--metrics") + 1] == "fid,kid" and c[c.index("--size") + 1] == "128" for c in evaluations)


def test_mnist_usps_fidelity_sh_runs_each_variant_with_its_settings(tmp_path: Path):
    """VARIANTS picks the runs of fidelity.sh: fp32 (strict), auto (the default), wino (fp32 with Winograd in
    channels_last); every run trains with run.sh's setup, its seed, and is scored."""
    from cyclegan.cli import build_parser
    from cyclegan.commands.train import config_from_args

    (tmp_path / "work" / "base").mkdir(parents=True)
    (tmp_path / "work" / "base" / "usps_cnn.safetensors").write_bytes(b"")  # the judge, trained once
    env = {"VARIANTS": "fp32 auto wino", "SEEDS": "5", "EPOCHS": "2"}
    commands = run_with_stubs(EXPERIMENTS / "mnist_usps" / "fidelity.sh", tmp_path, env)
    runs = set()
    for command in (c for c in commands if c[:2] == ["cyclegan", "train"]):
        cfg = config_from_args(build_parser().parse_args(command[1:]))
        assert (cfg.train.seed, cfg.optim.n_epochs, cfg.model.ngf) == (5, 2, 32)
        runs.add((cfg.data.root.split("/")[-2], cfg.train.precision, cfg.train.winograd, cfg.train.channels_last))
    assert runs == {
        ("fp32_seed5", "fp32", "auto", "auto"),
        ("auto_seed5", "auto", "auto", "auto"),
        ("wino_seed5", "fp32", "true", "true"),
    }
    scored = {next(p for p in Path(c[2]).parts if p.endswith("_seed5")) for c in commands if c[1] == "evaluate"}
    assert scored == {"fp32_seed5", "auto_seed5", "wino_seed5"}


def test_mnist_usps_fidelity_sh_starts_the_next_run_as_soon_as_either_ends(tmp_path: Path):
    """Two runs at a time, as a queue: when the faster run of a pair ends, the next run starts beside the slower
    one instead of waiting for it (a pair of 4 + 4 epoch runs on a CPU without native bf16 left one core idle for
    a third of its 110 minutes). The stub's slow run ends only once the next run has started, so a script that
    waits for whole pairs stalls it until its timeout and fails; nothing depends on timing otherwise."""
    events = tmp_path / "events"
    slow_run = (
        "import re, time\n"
        "from pathlib import Path\n"
        f"events = Path({str(events)!r})\n"
        "if sys.argv[1] != 'train':\n"
        "    sys.exit(0)\n"
        "run = next(m.group(0) for a in sys.argv for m in [re.search(r'[a-z0-9]+_seed[0-9]+', a)] if m)\n"
        "log = lambda what: open(events, 'a').write(f'{what} {run}\\n')\n"
        "log('start')\n"
        "deadline = time.monotonic() + 20\n"
        "while run == 'fp32_seed1' and 'start fp32_seed2' not in events.read_text() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "log('end')\n"
    )
    (tmp_path / "work" / "base").mkdir(parents=True)
    (tmp_path / "work" / "base" / "usps_cnn.safetensors").write_bytes(b"")
    env = {"SEEDS": "1 2", "VARIANTS": "fp32 auto"}
    run_with_stubs(EXPERIMENTS / "mnist_usps" / "fidelity.sh", tmp_path, env, cyclegan=slow_run)
    log = events.read_text().split("\n")[:-1]
    assert sorted(log) == sorted(f"{e} {v}_seed{s}" for e in ("start", "end") for v in ("fp32", "auto") for s in (1, 2))
    assert log.index("start fp32_seed2") < log.index("end fp32_seed1")  # beside the slow run, not after it
    running = list(itertools.accumulate(1 if e.startswith("start") else -1 for e in log))
    assert max(running) == 2


def test_horse2zebra_fidelity_sh_continues_a_stopped_run_on_the_threads_asked_for(tmp_path: Path):
    """A run with a checkpoint and no score continues (`--resume`, THREADS threads) instead of starting over; then its
    model snapshots not yet scored are scored into eval/epoch_NNNN, and the final model into eval/latest."""
    run = tmp_path / "work" / "fp32_seed1"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("latest.state", "epoch_0005.model", "epoch_0010.model"):
        (run / "checkpoints" / f"{name}.safetensors").write_bytes(b"")
    (run / "eval" / "epoch_0005").mkdir(parents=True)
    (run / "eval" / "epoch_0005" / "metrics.json").write_text("{}")  # scored before the run stopped
    env = {"PRECISIONS": "fp32", "SEEDS": "1", "THREADS": "1"}
    commands = run_with_stubs(EXPERIMENTS / "horse2zebra" / "fidelity.sh", tmp_path, env)
    train = [c for c in commands if c[:2] == ["cyclegan", "train"]]
    assert train == [["cyclegan", "train", "--resume", str(run), "--threads", "1", "--no-progress"]]
    evaluations = [c for c in commands if c[:2] == ["cyclegan", "evaluate"]]
    snapshot = str(run / "checkpoints" / "epoch_0010.model.safetensors")
    assert [(c[2], c[c.index("--out") + 1]) for c in evaluations] == [
        (snapshot, str(run / "eval" / "epoch_0010")),
        (str(run), str(run / "eval" / "latest")),
    ]


def test_horse2zebra_fidelity_sh_epochs_sets_the_budget(tmp_path: Path):
    """EPOCHS=10: 10 epochs at constant lr and 10 decaying, the issue's 20,000 steps at 1,000 images per domain."""
    from cyclegan.cli import build_parser
    from cyclegan.commands.train import config_from_args

    commands = run_with_stubs(
        EXPERIMENTS / "horse2zebra" / "fidelity.sh", tmp_path, {"PRECISIONS": "auto", "EPOCHS": "10"}
    )
    (train,) = [c for c in commands if c[:2] == ["cyclegan", "train"]]
    cfg = config_from_args(build_parser().parse_args(train[1:]))
    assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay, cfg.data.max_images) == (10, 10, 1000)
    assert cfg.train.save_every_epochs == 5  # the snapshots scored along the way


@pytest.mark.parametrize(
    "env, epochs, size, width",
    [({}, 8, 128, 32), ({"SIZE": "64", "EPOCHS": "32", "WIDTH": "64", "REFERENCE": "1"}, 32, 64, 64)],
)
def test_facades_run_sh_trains_both_implementations_for_the_same_epochs(tmp_path: Path, env, epochs, size, width):
    """run.sh's EPOCHS sets both halves of the schedule (constant, then decaying) and WIDTH the networks' width, for
    ours and, with REFERENCE=1, the reference implementation alike; SIZE sets the crop and the paper's 286/256
    load size."""
    from cyclegan.cli import build_parser
    from cyclegan.commands.train import config_from_args

    commands = run_with_stubs(EXPERIMENTS / "facades" / "run.sh", tmp_path, env)
    (train,) = [c for c in commands if c[:2] == ["cyclegan", "train"]]
    cfg = config_from_args(build_parser().parse_args(train[1:]))
    assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay) == (epochs, epochs)
    assert (cfg.data.crop_size, cfg.data.load_size) == (size, (size * 286 + 128) // 256)
    assert (cfg.model.ngf, cfg.model.ndf) == (width, width)
    reference = [c for c in commands if c[0] == "python" and c[1].endswith("reference_train.py")]
    if env.get("REFERENCE") == "1":
        (ref,) = reference
        assert ref[ref.index("--epochs") + 1] == ref[ref.index("--epochs-decay") + 1] == str(epochs)
        assert ref[ref.index("--crop-size") + 1] == str(size)
        assert ref[ref.index("--ngf") + 1] == ref[ref.index("--ndf") + 1] == str(width)
    else:
        assert reference == []
