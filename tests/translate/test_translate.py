"""Translation: any size in, same size out; folders, galleries, reference checkpoints."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_images
from cyclegan.errors import UserError
from cyclegan.nets import create_generator
from cyclegan.nets.winograd import WinogradConv2d
from cyclegan.reference import infer_generator, load_reference_generator
from cyclegan.translate import Translator, load_translator, parse_size, translate_files


def _translator(net, multiple):
    return Translator(net.eval(), 3, 3, multiple, torch.device("cpu"))


@pytest.mark.parametrize("name,multiple", [("resnet_6blocks", 4), ("unet_128", 128)])
def test_odd_sizes_come_back_the_same_size(name, multiple):
    t = _translator(create_generator(name, ngf=4), multiple)
    for w, h in [(301, 217), (5, 3), (64, 64)]:
        out = t(torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8))
        assert out.shape == (1, 3, h, w) and out.dtype == torch.uint8


def test_padding_does_not_change_aligned_images():
    net = create_generator("resnet_6blocks", ngf=4).eval()
    x = torch.randint(0, 256, (1, 3, 32, 48), dtype=torch.uint8)
    with torch.no_grad():
        direct = net(x.float() / 127.5 - 1)
    assert torch.equal(_translator(net, 4)(x), (direct + 1).mul(127.5).round().clamp(0, 255).to(torch.uint8))


def test_bf16_precision_runs_the_network_in_bf16_and_stays_close():
    net = create_generator("resnet_6blocks", ngf=8).eval()
    seen = []
    net.model[1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))  # the first convolution
    x = torch.randint(0, 256, (2, 3, 30, 34), dtype=torch.uint8)
    fp32 = _translator(net, 4)(x)
    t = _translator(net, 4)
    t.autocast = torch.bfloat16
    bf16 = t(x)
    assert seen == [torch.float32, torch.bfloat16]
    assert bf16.shape == fp32.shape and bf16.dtype == torch.uint8
    diff = (bf16.int() - fp32.int()).abs()
    assert 0 < diff.max() <= 16 and diff.float().mean() < 2  # rounded differently, same picture


@pytest.mark.parametrize(
    "bf16,avx512,precision,nhwc",
    [
        ("AMX-BF16", True, "bf16", True),  # AMX is fed from NHWC (5x fp32 at 256, docs/performance.md)
        ("AMX-BF16", True, "auto", True),
        ("AMX-BF16", True, "fp32", False),  # an explicit fp32 keeps the reference's layout: the same bits
        (None, True, "auto", True),  # auto's float32 on an AVX-512 CPU: Winograd, NHWC
        (None, False, "auto", True),  # AVX2 only: the same
        (None, False, "fp32", False),
    ],
)
def test_translation_runs_in_channels_last_where_training_would(pretend_cpu, tmp_path, bf16, avx512, precision, nhwc):
    """And with Winograd's residual convolutions where training's auto would (float32 on a CPU, precision auto)."""
    net, path = _reference_file(tmp_path, "resnet_6blocks", ngf=8)
    x = torch.randint(0, 256, (1, 3, 30, 34), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    strict = load_translator(path, device="cpu")(x)
    pretend_cpu(bf16, avx512)
    t = load_translator(path, device="cpu", precision=precision)
    assert t.channels_last is nhwc
    winograd = [m for m in t.nets.modules() if isinstance(m, WinogradConv2d)]
    assert len(winograd) == (12 if bf16 is None and precision == "auto" else 0)
    assert all(m.keep_filters for m in winograd)  # transformed once for all images and tiles
    weight = t.nets.model[1].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) is nhwc and weight.is_contiguous() is not nhwc
    seen = []
    t.nets.model[4].register_forward_hook(
        lambda m, i, o: seen.append(i[0].is_contiguous(memory_format=torch.channels_last))
    )
    out = t(x)
    assert seen == [nhwc]  # what the convolutions are given, past the input's padding
    if precision == "fp32":
        assert torch.equal(out, strict)
    else:  # the same picture to rounding (bf16: 16 levels at most, float32 NHWC: 1)
        diff = (out.int() - strict.int()).abs()
        assert diff.max() <= (16 if t.autocast else 1) and diff.float().mean() < 2


def test_tiles_in_channels_last_equal_the_one_piece_image(pretend_cpu, tmp_path):
    net, path = _reference_file(tmp_path, "resnet_6blocks", ngf=8)
    x = torch.randint(0, 256, (1, 3, 72, 60), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    pretend_cpu(None, True)
    whole = load_translator(path, device="cpu", precision="auto")
    tiles = load_translator(path, device="cpu", precision="auto", tile=32)
    assert whole.channels_last and tiles.channels_last
    assert (whole(x).int() - tiles(x).int()).abs().max() <= 1


def test_unknown_precision_error_names_the_argument(tmp_path):
    f = tmp_path / "g.pth"
    torch.save(create_generator("resnet_6blocks", ngf=4).state_dict(), f)
    with pytest.raises(UserError, match=r"^precision='fp8'.*choose one of auto, fp32"):
        load_translator(f, precision="fp8", device="cpu")


def test_translate_folder_writes_same_names_and_gallery(tmp_path):
    write_images(tmp_path / "in" / "sub", 3, size=(41, 29), ext=".jpg")
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    t = _translator(create_generator("resnet_6blocks", ngf=4), 4)
    result = translate_files(t, [str(tmp_path / "in")], tmp_path / "out", batch_size=2, progress=False)
    outs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert outs == ["sub/img_000.png", "sub/img_001.png", "sub/img_002.png"]
    assert Image.open(tmp_path / "out" / "sub" / "img_001.png").size == (41, 29)
    assert len(result["failed"]) == 1 and "broken.png" in str(result["failed"][0][0])
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count("<tr>") == 1 + 3 and "../in/sub/img_002.jpg" in page


def test_translating_on_a_cpu_keeps_freed_memory_for_the_next_image(tmp_path, monkeypatch):
    """The folder loop runs inside runtime.reuse_freed_memory on a CPU (tests/test_runtime.py checks what that
    does), and leaves it when done."""
    import contextlib

    from cyclegan.translate import files

    spans = []

    @contextlib.contextmanager
    def recording(device):
        assert torch.device(device).type == "cpu"
        spans.append("in")
        yield
        spans.append("out")

    monkeypatch.setattr(files, "reuse_freed_memory", recording)
    write_images(tmp_path / "in", 2, size=(16, 16))
    net = create_generator("resnet_6blocks", ngf=4)
    net_calls = []
    net.register_forward_hook(lambda *a: net_calls.append(spans[-1]))
    t = _translator(net, 4)
    translate_files(t, [str(tmp_path / "in")], tmp_path / "out", progress=False)
    assert spans == ["in", "out"] and net_calls == ["in", "in"]


def test_translate_many_images_all_listed(tmp_path):
    write_images(tmp_path / "in", 60, size=(8, 8))
    t = _translator(create_generator("resnet_6blocks", ngf=2), 4)
    translate_files(t, [str(tmp_path / "in" / "*.png")], tmp_path / "out", batch_size=16, progress=False)
    assert (tmp_path / "out" / "index.html").read_text().count("<tr>") == 61  # not capped at 50


def test_resize_option_and_keep_format(tmp_path):
    write_images(tmp_path / "in", 1, size=(50, 30), ext=".jpg")
    t = _translator(create_generator("resnet_6blocks", ngf=2), 4)
    translate_files(t, [str(tmp_path / "in")], tmp_path / "out", size="20", keep_format=True, progress=False)
    assert Image.open(tmp_path / "out" / "img_000.jpg").size == (33, 20)


def _reference_file(tmp_path, name="resnet_9blocks", old_instance_stats=False, **kw):
    net = create_generator(name, **kw)
    sd = net.state_dict()
    if old_instance_stats:  # checkpoints from old PyTorch carry stats for InstanceNorm layers
        for k in [k for k in sd if k.endswith("conv_block.1.weight")]:
            stem = k.replace("conv_block.1.weight", "conv_block.2")
            sd[f"{stem}.running_mean"] = torch.zeros(sd[k].shape[0])
            sd[f"{stem}.running_var"] = torch.ones(sd[k].shape[0])
            sd[f"{stem}.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(sd, path)
    return net, path


@pytest.mark.parametrize("old", [False, True])
def test_reference_checkpoint_gives_the_same_outputs(tmp_path, old):
    net, path = _reference_file(tmp_path, "resnet_9blocks", old_instance_stats=old, ngf=8)
    loaded = load_reference_generator(path)
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), net.eval()(x))
    t = load_translator(path, device="cpu")
    assert t.multiple == 4 and t.in_ch == 3


def test_reference_architecture_inference():
    for name, kw in [
        ("resnet_6blocks", dict(norm="batch", ngf=16, in_ch=1)),
        ("unet_128", dict(norm="batch", ngf=8, out_ch=2)),
        ("resnet_9blocks", dict(dropout=True)),
    ]:
        inferred_name, inferred = infer_generator(create_generator(name, **kw).state_dict())
        assert inferred_name == name and all(inferred[k] == v for k, v in kw.items())


def test_wrong_reference_architecture_is_a_clear_error(tmp_path):
    _, path = _reference_file(tmp_path, "resnet_6blocks", ngf=8)
    with pytest.raises(UserError, match="does not fit resnet_6blocks.*ngf"):
        load_reference_generator(path, ngf=16)
    bad = tmp_path / "x.pth"
    torch.save({"a": 1}, bad)
    with pytest.raises(UserError, match="expected a state dict of tensors"):
        load_reference_generator(bad)


def test_pickled_code_is_refused(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"w": np.dtype("float32")}, bad)  # needs unpickling a non-tensor global
    with pytest.raises(UserError, match="weights_only=True"):
        load_reference_generator(bad)


# --- what users get wrong: outputs onto inputs, name clashes, odd --out/--size/--device values -------------------


def _small():
    return _translator(create_generator("resnet_6blocks", ngf=2), 4)


def test_an_output_never_overwrites_an_input(tmp_path):
    inputs = write_images(tmp_path / "in", 2, size=(12, 10))
    before = [p.read_bytes() for p in inputs]
    with pytest.raises(UserError, match=r"img_000.png would overwrite the input .*img_000.png; choose an --out folder"):
        translate_files(_small(), [str(inputs[0])], inputs[0], progress=False)  # the input file as the output file
    jpgs = write_images(tmp_path / "jpg", 1, size=(12, 10), ext=".jpg")  # outputs (.png) would not collide, but
    for folder in (tmp_path / "in", tmp_path / "jpg"):  # the input folder is never the output folder
        with pytest.raises(UserError, match=r"is the input folder .*; translations go into a folder of their own"):
            translate_files(_small(), [str(folder)], folder, progress=False)
    assert [p.name for p in (tmp_path / "jpg").iterdir()] == [jpgs[0].name]
    with pytest.raises(UserError, match="would overwrite the input"):  # a glob over the output folder
        translate_files(_small(), [str(tmp_path / "in" / "*.png")], tmp_path / "in", progress=False)
    assert [p.read_bytes() for p in inputs] == before and sorted(p.name for p in (tmp_path / "in").iterdir()) == [
        "img_000.png",
        "img_001.png",
    ]


def test_earlier_outputs_inside_the_input_folder_are_not_inputs(tmp_path):
    write_images(tmp_path / "in", 2, size=(12, 10))
    for pattern in [str(tmp_path / "in"), str(tmp_path / "in"), str(tmp_path / "in" / "**" / "*.png")]:
        result = translate_files(_small(), [pattern], tmp_path / "in" / "out", progress=False)
        assert len(result["written"]) == 2
    assert sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*.png")) == [
        "img_000.png",
        "img_001.png",
        "out/img_000.png",
        "out/img_001.png",
    ]  # no out/out/...
    write_images(tmp_path / "only" / "out", 1, size=(8, 8))  # nothing but earlier outputs
    with pytest.raises(UserError, match="every image this folder finds is under the output folder"):
        translate_files(_small(), [str(tmp_path / "only")], tmp_path / "only" / "out", progress=False)


def test_two_inputs_with_one_output_name_are_refused_before_writing(tmp_path):
    write_images(tmp_path / "in" / "sub", 1, size=(12, 10), ext=".jpg")
    write_images(tmp_path / "in" / "sub", 1, size=(12, 10), ext=".png")  # sub/img_000.jpg and sub/img_000.png
    write_images(tmp_path / "in", 1, size=(12, 10), ext=".bmp")
    with pytest.raises(
        UserError,
        match=r"sub/img_000.jpg and .*sub/img_000.png would both be written to .*out/sub/img_000.png; "
        r"nothing was written: add --keep-format",
    ):
        translate_files(_small(), [str(tmp_path / "in")], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    result = translate_files(_small(), [str(tmp_path / "in")], tmp_path / "out", keep_format=True, progress=False)
    assert len(result["written"]) == 3 and len(list((tmp_path / "out").rglob("img_000.*"))) == 3
    write_images(tmp_path / "other", 1, size=(12, 10), ext=".bmp")  # in/img_000.bmp and other/img_000.bmp
    with pytest.raises(
        UserError,
        match="would both be written to .*img_000.bmp; nothing was written: rename one, or translate them into "
        "separate",
    ):
        translate_files(
            _small(),
            [str(tmp_path / "in"), str(tmp_path / "other")],
            tmp_path / "out2",
            keep_format=True,
            progress=False,
        )
    assert not (tmp_path / "out2").exists()


def test_out_as_an_image_file_name_or_an_existing_file(tmp_path):
    write_images(tmp_path / "in", 2, size=(13, 11))
    result = translate_files(
        _small(), [str(tmp_path / "in" / "img_000.png")], tmp_path / "x" / "one.jpg", progress=False
    )
    assert (
        result["written"] == [(tmp_path / "in" / "img_000.png", tmp_path / "x" / "one.jpg")]
        and result["gallery"] is None
    )
    assert (tmp_path / "x" / "one.jpg").is_file() and Image.open(tmp_path / "x" / "one.jpg").format == "JPEG"
    assert Image.open(tmp_path / "x" / "one.jpg").size == (13, 11) and sorted(
        p.name for p in (tmp_path / "x").iterdir()
    ) == ["one.jpg"]
    with pytest.raises(UserError, match=r"--out .*one.png names an image file, but the inputs hold 2 images"):
        translate_files(_small(), [str(tmp_path / "in")], tmp_path / "y" / "one.png", progress=False)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"--out .*notes.txt is an existing file; give a folder"):
        translate_files(_small(), [str(tmp_path / "in")], tmp_path / "notes.txt", progress=False)
    with pytest.raises(UserError, match=r"notes.txt is a file, not a folder"):
        translate_files(_small(), [str(tmp_path / "in")], tmp_path / "notes.txt" / "out", progress=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "size,message",
    [
        ("0", "at least 1 pixel"),
        ("-5", "expected N"),
        ("abc", "expected N"),
        ("64x", "expected N"),
        ("8x8x8", "expected N"),
        ("\u00b2", "expected N"),
        ("100000", "at most 8192"),
        ("32x0", "at least 1 pixel"),
    ],
)
def test_bad_size_is_a_clear_error(size, message):
    with pytest.raises(UserError, match=f"^--size '{size}': .*{message}"):
        parse_size(size)


def test_size_forms():
    assert (
        parse_size(None) is None
        and parse_size("20") == 20
        and parse_size("32X24") == (32, 24)
        and parse_size(" 48x16 ") == (48, 16)
    )


def test_device_is_checked_before_the_checkpoint_is_read(tmp_path):
    missing = tmp_path / "none.model.safetensors"
    with pytest.raises(UserError, match=r"^--device 'gpu' is not a device name; use auto, cpu, cuda or cuda:N"):
        load_translator(missing, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available; use --device cpu"):
            load_translator(missing, device="cuda")


def test_gallery_links_are_url_encoded(tmp_path):
    write_images(tmp_path / "in", 1, size=(8, 8))
    (tmp_path / "in" / "img_000.png").rename(tmp_path / "in" / "50%#a b<c>.png")
    translate_files(_small(), [str(tmp_path / "in")], tmp_path / "out", progress=False)
    page = (tmp_path / "out" / "index.html").read_text()
    assert 'src="../in/50%25%23a%20b%3Cc%3E.png"' in page and 'src="50%25%23a%20b%3Cc%3E.png"' in page
    assert "<small>50%#a b&lt;c&gt;.png</small>" in page


def test_cli_translate_errors_are_one_line(tmp_path, capsys):
    from cyclegan.cli import main

    torch.save(create_generator("resnet_6blocks", ngf=2).state_dict(), tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    base = ["translate", "-c", str(tmp_path / "g.pth"), str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    for extra, message in [
        ([], "none of the 1 input image(s) could be read"),
        (["--size", "32X"], "--size '32X'"),
        (["--device", "gpu"], "--device 'gpu'"),
    ]:
        code = main(base + extra)
        captured = capsys.readouterr()
        last = captured.err.strip().splitlines()[-1]  # after the progress bar, if any
        assert code == 2 and last.startswith("error: ") and message in last and "Traceback" not in captured.err, (
            captured.err
        )
        assert "gallery" not in captured.out
    assert not (tmp_path / "out").exists()


def test_train_mode_dropout_gives_the_same_outputs_every_run(tmp_path, capsys):
    """pix2pix's test mode (the reference's test.py: dropout on) is random; translate and evaluate seed it, so two
    runs write the same images and scores. A one-way model needs no --direction (this one translates BtoA)."""
    import json

    from conftest import TINY
    from cyclegan.cli import main
    from cyclegan.config import build_config
    from cyclegan.train import train

    data = tmp_path / "data"
    for name in ("trainA", "trainB", "testA", "testB"):
        write_images(data / name, 3, size=(40, 36), seed=len(name))
    train(
        build_config(
            ["pix2pix"],
            [],
            TINY
            + [
                f"data.root={data}",
                "model.generator=unet_128",
                "data.load_size=128",
                "data.crop_size=128",
                "data.direction=BtoA",
                "train.max_steps=2",
            ],
        ),
        tmp_path / "p2p",
    )
    outputs = []
    for run in ("one", "two"):
        assert (
            main(
                [
                    "translate",
                    "-c",
                    str(tmp_path / "p2p"),
                    str(data / "testB"),
                    "--out",
                    str(tmp_path / run),
                    "--no-gallery",
                ]
            )
            == 0
        )
        outputs.append([np.asarray(Image.open(p)) for p in sorted((tmp_path / run).glob("*.png"))])
    assert len(outputs[0]) == 3 and all(np.array_equal(a, b) for a, b in zip(*outputs))
    scores = []
    for run in ("e1", "e2"):
        assert (
            main(
                [
                    "evaluate",
                    str(tmp_path / "p2p"),
                    "--data",
                    str(data),
                    "--metrics",
                    "seg",
                    "--seg-direction",
                    "BtoA",
                    "--out",
                    str(tmp_path / run),
                    "--quiet",
                    "--no-gallery",
                ]
            )
            == 0
        )
        scores.append(json.loads((tmp_path / run / "metrics.json").read_text())["metrics"])
    assert scores[0] == scores[1] and list(scores[0]) == ["BtoA"]
    assert (
        main(
            [
                "translate",
                "-c",
                str(tmp_path / "p2p"),
                "--direction",
                "AtoB",
                str(data / "testB"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "this pix2pix model translates BtoA, not AtoB" in capsys.readouterr().err


def test_auto_translation_by_winograd_is_the_fp32_picture(pretend_cpu, tmp_path):
    """At a size where Winograd runs (36 tiles per residual convolution), auto's float32 on an AVX2 CPU gives the
    strict fp32 image to within one 8-bit level."""
    from cyclegan.nets import winograd

    net, path = _reference_file(tmp_path, "resnet_6blocks", ngf=8)
    x = torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    strict = load_translator(path, device="cpu")(x)
    pretend_cpu(None, False)
    t = load_translator(path, device="cpu", precision="auto")
    tiles = []
    first = next(m for m in t.nets.modules() if isinstance(m, WinogradConv2d))
    first.register_forward_hook(lambda m, i, o: tiles.append(winograd.tiles(i[0])))
    out = t(x)
    assert tiles == [36] and tiles[0] >= winograd.MIN_TILES
    diff = (out.int() - strict.int()).abs()
    assert diff.max() <= 1 and diff.float().mean() < 0.01
