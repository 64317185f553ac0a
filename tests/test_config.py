"""Config: presets, overrides, files, type checking, round trip."""

import json

import pytest

from cyclegan.config import PRESETS, Config, build_config
from cyclegan.errors import UserError


def test_defaults_are_the_papers():
    c = Config()
    assert (c.model.generator, c.model.discriminator, c.model.norm, c.model.init_gain) == ("resnet_9blocks", "basic", "instance", 0.02)
    assert (c.loss.gan_mode, c.loss.lambda_a, c.loss.lambda_b, c.loss.lambda_identity, c.loss.pool_size) == ("lsgan", 10.0, 10.0, 0.5, 50)
    assert (c.optim.lr, c.optim.beta1, c.optim.n_epochs, c.optim.n_epochs_decay) == (2e-4, 0.5, 100, 100)
    assert (c.data.load_size, c.data.crop_size, c.train.batch_size) == (286, 256, 1)


def test_overrides_are_typed():
    c = build_config(["quick"], [], ["model.ngf=32", "loss.lambda_a=5", "train.compile=yes"])
    assert c.model.ngf == 32 and c.loss.lambda_a == 5.0 and isinstance(c.loss.lambda_a, float) and c.train.compile is True


@pytest.mark.parametrize("override,match", [
    ("model.ngf=abc", "model.ngf: expected int"), ("model.nfg=3", "unknown config key 'model.nfg'"),
    ("modle.ngf=3", "unknown config key"), ("ngf", "section.field=value"), ("train.compile=maybe", "true/false"),
])
def test_bad_overrides_name_the_field(override, match):
    with pytest.raises(UserError, match=match):
        build_config([], [], [override])


def test_yaml_and_json_files(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  ngf: 8\nloss:\n  gan_mode: vanilla\n")
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"train": {"seed": 3}}))
    c = build_config([], [str(y), str(j)], ["model.ngf=16"])
    assert (c.model.ngf, c.loss.gan_mode, c.train.seed) == (16, "vanilla", 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  widht: 3\n")
    with pytest.raises(UserError, match="bad.yaml.*unknown config key 'model.widht'"):
        build_config([], [str(bad)], [])


def test_round_trip_and_presets():
    c = build_config(["paper128", "cycle_only"], [], [])
    assert Config.from_dict(json.loads(c.to_json())) == c
    assert c.model.generator == "resnet_6blocks" and c.loss.lambda_gan_a == 0.0
    with pytest.raises(UserError, match="unknown preset"):
        build_config(["fast"], [], [])
    assert {"paper", "quick", "gan_only", "cycle_only", "gan_forward", "gan_backward"} <= set(PRESETS)


def test_wgangp_is_refused_in_float16():
    from cyclegan.config import validate

    validate(build_config([], [], ["loss.gan_mode=wgangp", "train.precision=bf16"]))
    with pytest.raises(UserError, match="wgangp.*fp16.*use bf16 or fp32"):
        validate(build_config([], [], ["loss.gan_mode=wgangp", "train.precision=fp16"]))
