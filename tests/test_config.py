"""Config: presets, overrides, files, type checking, round trip."""

import json

import pytest

from cyclegan.config import PRESETS, Config, build_config
from cyclegan.errors import UserError


def test_defaults_are_the_papers():
    c = Config()
    assert (c.model.generator, c.model.discriminator, c.model.norm, c.model.init_gain) == (
        "resnet_9blocks",
        "basic",
        "instance",
        0.02,
    )
    assert (c.loss.gan_mode, c.loss.lambda_a, c.loss.lambda_b, c.loss.lambda_identity, c.loss.pool_size) == (
        "lsgan",
        10.0,
        10.0,
        0.5,
        50,
    )
    assert (c.optim.lr, c.optim.beta1, c.optim.n_epochs, c.optim.n_epochs_decay) == (2e-4, 0.5, 100, 100)
    assert (c.data.load_size, c.data.crop_size, c.train.batch_size) == (286, 256, 1)


def test_overrides_are_typed():
    c = build_config(["quick"], [], ["model.ngf=32", "loss.lambda_a=5", "data.flip=no"])
    assert c.model.ngf == 32 and c.loss.lambda_a == 5.0 and isinstance(c.loss.lambda_a, float) and c.data.flip is False


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.ngf=abc", "model.ngf: expected int"),
        ("model.nfg=3", "unknown config key 'model.nfg'"),
        ("modle.ngf=3", "unknown config key"),
        ("ngf", "section.field=value"),
        ("data.flip=maybe", "true/false"),
    ],
)
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
    from cyclegan.methods import validate

    validate(build_config([], [], ["loss.gan_mode=wgangp", "train.precision=bf16"]))
    with pytest.raises(UserError, match="wgangp.*fp16.*use bf16 or fp32"):
        validate(build_config([], [], ["loss.gan_mode=wgangp", "train.precision=fp16"]))


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.log_every=0", "train.log_every must be at least 1"),
        ("optim.lr=-1", "optim.lr must be positive"),
        ("loss.pool_size=-1", "loss.pool_size must be 0 or more"),
        ("data.max_images=-2", "data.max_images must be 0 or more"),
        ("optim.beta1=1.5", "beta1 and optim.beta2 must be in"),
        ("train.max_steps=-1", "train.max_steps must be 0 or more"),
    ],
)
def test_out_of_range_values_are_refused(override, match):
    from cyclegan.methods import validate

    with pytest.raises(UserError, match=match):
        validate(build_config([], [], [override]))


def test_identity_loss_across_channel_counts_is_refused():
    """Identity feeds a B image to G_A (an A-network): with 1-channel A and 3-channel B that was a conv shape
    error at the first step; validation names the fix. Without identity, or with equal counts, it is fine."""
    from cyclegan.methods import validate

    with pytest.raises(
        UserError, match="lambda_identity=0.5 .*channels_a=1, data.channels_b=3.*set loss.lambda_identity=0"
    ):
        validate(build_config([], [], ["data.channels_a=1"]))
    validate(build_config([], [], ["data.channels_a=1", "loss.lambda_identity=0"]))
    validate(build_config([], [], ["data.channels_a=1", "data.channels_b=1"]))
    validate(build_config(["pix2pix"], [], ["data.channels_a=1"]))  # pix2pix has no identity term


def test_no_epochs_at_all_is_refused():
    from cyclegan.methods import validate

    validate(build_config([], [], ["optim.n_epochs=0", "optim.n_epochs_decay=1"]))
    with pytest.raises(UserError, match="n_epochs \\+ optim.n_epochs_decay must be at least 1"):
        validate(build_config([], [], ["optim.n_epochs=0", "optim.n_epochs_decay=0"]))


@pytest.mark.parametrize(
    "overrides,match",
    [
        (
            ["data.crop_size=30", "data.load_size=34"],
            "crop_size=30 does not fit.*not a multiple of 4.*halves the image 2 times.*use 28 or 32",
        ),
        (["data.crop_size=2", "data.load_size=4"], "crop_size=2 does not fit.*use 24$"),
        (["data.crop_size=16", "data.load_size=20"], "crop_size=16 does not fit.*more than 1 spatial element.*use 24$"),
        (
            ["model.generator=unet_128", "data.crop_size=64", "data.load_size=72"],
            "not a multiple of 128.*7 times.*use 128$",
        ),
    ],
)
def test_crop_sizes_the_networks_cannot_take_are_refused(overrides, match):
    """A probe of one training step on shape-only tensors: a crash mid-training before."""
    from cyclegan.train.state import check_crop_size

    with pytest.raises(UserError, match=match):
        check_crop_size(build_config(["quick"], [], overrides))
    check_crop_size(build_config(["quick"], [], overrides + ["data.preprocess=none"]))  # translation-like: padded
    check_crop_size(build_config(["quick"], [], ["data.crop_size=24", "data.load_size=28"]))


def test_choice_settings_name_their_choices():
    from cyclegan.methods import validate

    for key in ("train.compile", "train.channels_last", "train.precision"):
        with pytest.raises(UserError, match=f"{key}='maybe' is not one of: auto"):
            validate(build_config([], [], [f"{key}=maybe"]))
