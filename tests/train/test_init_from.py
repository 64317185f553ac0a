"""train.init_from / --init-from: a new run starting from saved weights (ours or the reference's .pth files)."""

from __future__ import annotations

import json

import pytest
import torch

from cyclegan.checkpoint import load_tree
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.methods import validate
from cyclegan.runtime import unwrap
from cyclegan.train import train
from cyclegan.train.state import create_state

CPU = torch.device("cpu")


@pytest.fixture
def source(image_root, tiny_overrides, tmp_path):
    """A finished 3-step run (seed 5): its run directory."""
    train(
        build_config([], [], tiny_overrides + [f"data.root={image_root}", "train.seed=5", "train.max_steps=3"]),
        tmp_path / "src",
    )
    return tmp_path / "src"


def _state(image_root, tiny, *extra):
    return create_state(validate(build_config([], [], tiny + [f"data.root={image_root}", *extra])), CPU)


def _saved_nets(run_dir):
    tree, _ = load_tree(run_dir / "checkpoints" / "latest.state.safetensors")
    return tree["nets"]


def _equal(net, sd):
    own = unwrap(net).state_dict()
    return own.keys() == sd.keys() and all(torch.equal(own[k], sd[k]) for k in own)


def test_run_directory_loads_every_network_and_nothing_else(source, image_root, tiny_overrides):
    saved = _saved_nets(source)
    state = _state(image_root, tiny_overrides, f"train.init_from={source}")
    fresh = _state(image_root, tiny_overrides)
    for name in ("G_A", "G_B", "D_A", "D_B"):
        assert _equal(state.nets[name], saved[name]), name
        assert not _equal(fresh.nets[name], saved[name])  # the source trained: its weights are not the seed's
    assert set(state.initialised) == {"G_A", "G_B", "D_A", "D_B"}
    assert state.step == 0 and state.epoch == 0 and not state.opt_g.state and not state.opt_d.state
    assert all(not p.images for p in state.pools.values())


def test_model_snapshot_loads_the_generators_and_discriminators_start_fresh(source, image_root, tiny_overrides):
    saved = _saved_nets(source)
    model = source / "checkpoints" / "latest.model.safetensors"
    state = _state(image_root, tiny_overrides, f"train.init_from={model}")
    fresh = _state(image_root, tiny_overrides)
    assert _equal(state.nets["G_A"], saved["G_A"]) and _equal(state.nets["G_B"], saved["G_B"])
    for name in ("D_A", "D_B"):  # the seed's N(0, 0.02) draw, as in a run without init_from
        assert _equal(state.nets[name], unwrap(fresh.nets[name]).state_dict())
    assert set(state.initialised) == {"G_A", "G_B"}


def test_moving_average_starts_from_the_loaded_weights(source, image_root, tiny_overrides):
    state = _state(image_root, tiny_overrides, f"train.init_from={source}", "optim.ema_decay=0.999")
    assert _equal(state.ema["G_A"], _saved_nets(source)["G_A"])


def test_reference_pth_files_folder_single_file_and_later_sources_replace(source, image_root, tiny_overrides, tmp_path):
    saved = _saved_nets(source)
    ref = tmp_path / "reference"
    ref.mkdir()
    for name, sd in saved.items():  # as the reference writes them; old files also carry InstanceNorm statistics
        sd = dict(sd)
        sd["model.2.running_mean"] = torch.zeros(4) if name.startswith("G") else None
        torch.save({k: v for k, v in sd.items() if v is not None}, ref / f"latest_net_{name}.pth")
    state = _state(image_root, tiny_overrides, f"train.init_from={ref}")
    assert all(_equal(state.nets[n], saved[n]) for n in saved)
    assert state.initialised == {n: str(ref) for n in ("D_A", "D_B", "G_A", "G_B")}

    other = _state(image_root, tiny_overrides, "train.seed=9")  # a G_B of other weights, in a file of any name
    torch.save(unwrap(other.nets["G_B"]).state_dict(), tmp_path / "zebra2horse.pth")
    state = _state(image_root, tiny_overrides, f"train.init_from={ref},G_B={tmp_path / 'zebra2horse.pth'}")
    assert _equal(state.nets["G_A"], saved["G_A"])
    assert _equal(state.nets["G_B"], unwrap(other.nets["G_B"]).state_dict())
    assert state.initialised["G_B"] == str(tmp_path / "zebra2horse.pth")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{tmp}/zebra2horse.pth", "which network does"),
        ("G_C={tmp}/zebra2horse.pth", "no network G_C (its networks: G_A, G_B, D_A, D_B)"),
        (
            "D_A={src}/checkpoints/latest.model.safetensors",
            "holds no network D_A (it holds G_A, G_B; a run's discriminators",
        ),
        ("{tmp}", "neither a run directory"),
        ("{tmp}/missing.pth", "missing.pth not found"),
    ],
)
def test_bad_sources_are_refused_by_name(source, image_root, tiny_overrides, tmp_path, spec, message):
    torch.save(unwrap(_state(image_root, tiny_overrides).nets["G_B"]).state_dict(), tmp_path / "zebra2horse.pth")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _state(image_root, tiny_overrides, "train.init_from=" + spec.format(tmp=tmp_path, src=source))


def test_syntax_is_checked_by_validate():
    with pytest.raises(UserError, match="neither PATH nor NET=PATH"):
        validate(build_config([], [], ["train.init_from=G A=x.pth"]))


def test_shape_mismatch_names_the_settings_to_give(source, image_root, tiny_overrides, tmp_path):
    with pytest.raises(
        UserError, match=r"G_A of .* does not fit .* it was trained with --set model\.ngf=4; give the same"
    ):
        _state(image_root, tiny_overrides, f"train.init_from={source}", "model.ngf=8")
    # a reference generator file: the architecture is read off the weights
    torch.save(unwrap(_state(image_root, tiny_overrides).nets["G_A"]).state_dict(), tmp_path / "latest_net_G_A.pth")
    with pytest.raises(
        UserError,
        match=r"it holds a resnet_6blocks generator \(ngf 4, instance norm, 3 -> 3 channels\); "
        r"give --set model.generator=resnet_6blocks --set model.ngf=4",
    ):
        _state(
            image_root,
            tiny_overrides,
            f"train.init_from={tmp_path / 'latest_net_G_A.pth'}",
            "model.generator=resnet_9blocks",
        )
    torch.save(unwrap(_state(image_root, tiny_overrides).nets["D_A"]).state_dict(), tmp_path / "latest_net_D_A.pth")
    with pytest.raises(UserError, match=r"its first layer has 4 filters on 3 channels; give --set model.ndf=4"):
        _state(image_root, tiny_overrides, f"train.init_from={tmp_path / 'latest_net_D_A.pth'}", "model.ndf=8")


def test_resume_refuses_a_changed_init_from(source, image_root, tiny_overrides):
    cfg = build_config(
        [],
        [],
        tiny_overrides + [f"data.root={image_root}", "train.seed=5", "train.max_steps=4", f"train.init_from={source}"],
    )
    with pytest.raises(UserError, match="train.init_from starts a new run"):
        train(cfg, source, resume=True)


def test_cli_fine_tunes_from_a_run_and_records_the_source(
    source, image_root, tiny_overrides, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    assert (
        main(
            [
                "train",
                str(image_root),
                "--run-dir",
                "tuned",
                "--init-from",
                "src/checkpoints/latest.model.safetensors",
                "--max-steps",
                "2",
                *sets,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    model = (source / "checkpoints" / "latest.model.safetensors").resolve()
    assert f"initial weights: G_A, G_B from {model}; D_A, D_B fresh" in out
    assert "run directory: tuned; watch it with: tensorboard --logdir tuned" in out
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["train"]["init_from"] == str(model)
    # resuming it needs no source (the files may be gone), and --init-from with --resume is refused
    source.rename(tmp_path / "moved")
    assert main(["train", "--resume", "tuned", "--max-steps", "3"]) == 0
    assert "initial weights" not in capsys.readouterr().out
    assert main(["train", "--resume", "tuned", "--init-from", "src"]) == 2
    assert "--init-from starts a new run" in capsys.readouterr().err
    assert main(["train", str(image_root), "--run-dir", "x", "--init-from", "nowhere", *sets]) == 2
    assert "train.init_from: nowhere not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_path_with_an_equals_sign_is_a_path(source, image_root, tiny_overrides, tmp_path):
    moved = source.rename(tmp_path / "lr=2e-4")
    state = _state(image_root, tiny_overrides, f"train.init_from={moved}")
    assert set(state.initialised) == {"G_A", "G_B", "D_A", "D_B"}
