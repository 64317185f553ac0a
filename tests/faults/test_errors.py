"""One line for every error a user can cause: each case runs the CLI and asserts one line on stderr, no traceback,
and the documented exit status (2 for bad input). Most run in this process through `cyclegan.cli.main` (an
exception escaping it would be the traceback a user sees); the malicious pickle runs as a real process."""

import os
import subprocess
import sys

import pytest
import torch

from conftest import needs_horse2zebra
from cyclegan.cli import main

from .helpers import cli, env, one_line_error, real_data, tiny_sets

pytestmark = needs_horse2zebra


class Payload:
    """Unpickling this runs `touch MARKER`: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    data = real_data(root / "data", test=2)
    assert (
        main(
            ["train", str(data), "--run-dir", str(root / "run"), "--preset", "quick", *tiny_sets(), "--max-steps", "1"]
        )
        == 0
    )
    (root / "corrupt").mkdir()
    (root / "corrupt" / "photo.jpg").write_bytes(b"\xff\xd8 nothing more")
    bad_train = real_data(root / "bad_train")
    (bad_train / "trainA" / "broken.png").write_bytes(b"\x89PNG broken")
    torch.save({"weight": Payload(root / "PWNED")}, root / "latest_net_G_A.pth")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(root / "plain.safetensors"))  # a safetensors file of someone else's
    truncated = root / "truncated.model.safetensors"
    truncated.write_bytes((root / "run" / "checkpoints" / "latest.model.safetensors").read_bytes()[:1000])
    (root / "config.yaml").write_text("model: [unclosed\n")
    return root


def _case(world, tmp):
    r, run, data, o = world, str(world / "run"), str(world / "data"), str(tmp / "out")
    return {
        # bad checkpoint kinds
        "foreign safetensors": (
            ["translate", "-c", str(r / "plain.safetensors"), data + "/testA", "-o", o],
            "plain.safetensors: a safetensors file without cyclegan metadata",
        ),
        "truncated snapshot": (
            ["translate", "-c", str(r / "truncated.model.safetensors"), data + "/testA", "-o", o],
            "truncated.model.safetensors: not a readable safetensors checkpoint",
        ),
        "config as checkpoint": (
            ["translate", "-c", str(r / "config.yaml"), data + "/testA", "-o", o],
            "config.yaml: not a readable safetensors checkpoint",
        ),
        "resume a non-run": (["train", "--resume", data], "no config.json or checkpoints/latest.state.safetensors"),
        "check a non-run": (["check", data], "no checkpoints (*.safetensors) there"),
        "init from garbage": (
            ["train", data, "--run-dir", str(tmp / "r"), "--init-from", f"G_A={r / 'config.yaml'}", *tiny_sets()],
            "config.yaml",
        ),
        # bad config values
        "not a number": (
            ["train", data, "--run-dir", str(tmp / "r"), "--set", "model.ngf=abc"],
            "model.ngf: expected int, got 'abc'",
        ),
        "guard setting": (
            ["train", data, "--run-dir", str(tmp / "r"), "--set", "train.max_bad_steps=-1"],
            "train.max_bad_steps must be 0",
        ),
        "zero learning rate": (
            ["train", data, "--run-dir", str(tmp / "r"), "--set", "optim.lr=0"],
            "optim.lr must be positive",
        ),
        "unparsable config file": (
            ["train", data, "--run-dir", str(tmp / "r"), "--config", str(r / "config.yaml")],
            "config.yaml: cannot parse (expected ',' or ']', but got '<stream end>' at line 2",
        ),
        # missing folders and files
        "missing training folder": (["train", str(tmp / "nothing"), "--run-dir", str(tmp / "r")], "does not exist"),
        "missing input": (["translate", "-c", run, str(tmp / "missing.png"), "-o", o], "no such file or folder"),
        "missing test data": (
            ["evaluate", run, "--data", str(tmp / "nothing"), "--metrics", "cycle", "--out", o],
            "nothing",
        ),
        "missing fid folder": (["fid", str(tmp / "nothing"), str(tmp / "nothing2")], "nothing"),
        "missing checkpoint": (["translate", "-c", str(tmp / "none.safetensors"), data, "-o", o], "not found"),
        # unreadable images
        "only unreadable inputs": (
            ["translate", "-c", run, str(r / "corrupt"), "-o", o],
            "none of the 1 input image(s) could be read (first: ",
        ),
        "unreadable training image": (
            ["train", str(r / "bad_train"), "--run-dir", str(tmp / "r"), *tiny_sets()],
            "broken.png: cannot read image",
        ),
        # a malicious pickle posing as a reference checkpoint
        "malicious pickle": (
            ["translate", "-c", str(r / "latest_net_G_A.pth"), data + "/testA", "-o", o],
            "latest_net_G_A.pth: refused: it holds pickled Python objects",
        ),
        "malicious init-from": (
            [
                "train",
                data,
                "--run-dir",
                str(tmp / "r"),
                "--init-from",
                f"G_A={r / 'latest_net_G_A.pth'}",
                *tiny_sets(),
            ],
            "refused: it holds pickled",
        ),
    }


CASES = [
    "foreign safetensors",
    "truncated snapshot",
    "config as checkpoint",
    "resume a non-run",
    "check a non-run",
    "init from garbage",
    "not a number",
    "guard setting",
    "zero learning rate",
    "unparsable config file",
    "missing training folder",
    "missing input",
    "missing test data",
    "missing fid folder",
    "missing checkpoint",
    "only unreadable inputs",
    "unreadable training image",
    "malicious pickle",
    "malicious init-from",
]


@pytest.mark.parametrize("name", CASES)
def test_error_path_is_one_line(world, tmp_path, capsys, name):
    argv, expected = _case(world, tmp_path)[name]
    capsys.readouterr()
    rc = main(argv)  # an exception here is a traceback for the user
    err = capsys.readouterr().err
    assert rc == 2, err
    line = one_line_error(subprocess.CompletedProcess(argv, rc, "", err))
    assert expected in line, line
    assert not (world / "PWNED").exists()  # nothing in the pickle ran


def test_every_case_is_walked(world, tmp_path):
    assert sorted(CASES) == sorted(_case(world, tmp_path))


def test_malicious_pickle_as_a_real_process(world, tmp_path):
    out = cli("translate", "-c", world / "latest_net_G_A.pth", world / "data" / "testA", "-o", tmp_path / "o")
    assert out.returncode == 2
    line = one_line_error(out)
    assert "refused: it holds pickled Python objects, not only tensors (Trying to load unsupported GLOBAL" in line
    assert "torch.save(net.state_dict(), ...)" in line and "weights_only=False" not in line
    assert not (world / "PWNED").exists() and not (tmp_path / "o").exists()


def test_a_bad_pixel_limit_setting_is_one_line(world, tmp_path):
    out = cli(
        "translate", "-c", world / "run", world / "data" / "testA", "-o", tmp_path / "o", CYCLEGAN_MAX_PIXELS="many"
    )
    assert out.returncode == 2
    assert "CYCLEGAN_MAX_PIXELS='many': expected a number of pixels" in one_line_error(out)


def test_debug_still_shows_the_traceback(world, tmp_path):
    argv = [
        "translate",
        "--debug",
        "-c",
        str(world / "latest_net_G_A.pth"),
        str(world / "data" / "testA"),
        "-o",
        str(tmp_path / "o"),
    ]
    out = subprocess.run(
        [sys.executable, "-m", "cyclegan", *argv], capture_output=True, text=True, env=env(), timeout=300, check=False
    )
    assert out.returncode == 1 and "Traceback" in out.stderr and "UserError" in out.stderr
    assert not (world / "PWNED").exists()
