"""Checkpoints as safetensors (tensors) + JSON (everything else): never pickled objects.

Two kinds of file, both written atomically (temporary file, fsync, rename):
- a model snapshot `*.model.safetensors`: the inference networks' weights, plus JSON metadata with
  the method, network specs and data config, enough to rebuild and run them with no training config;
- a resume state `*.state.safetensors`: every network, both optimizers, the pools, RNG states, the
  schedule and the position in training, so `--resume` continues as if never stopped.
Any nested structure of dicts, lists, numbers, strings and tensors is stored: tensors go into the
safetensors payload, the rest into a JSON tree that points at them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import UserError
from .runtime import unwrap

FORMAT_MODEL = "cyclegan-model/1"
FORMAT_STATE = "cyclegan-state/1"


def _encode(obj, key: str, tensors: dict):
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{key}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, f"{key}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {key!r}")


def _decode(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__items__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    return obj


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync it, then rename over `path`: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tree(path: str | Path, tree: dict, meta: dict) -> None:
    """Write a nested tree of tensors and plain values, with `meta` (JSON-able), atomically."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(tree, "", tensors)
    metadata = {"cyclegan": json.dumps({**meta, "tree": encoded})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tree(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """Read a file written by `save_tree`: (tree, meta)."""
    meta, tensors = _read(Path(path), device, tensors=True)
    tree = _decode(meta.pop("tree"), tensors)
    return tree, meta


def read_meta(path: str | Path) -> dict:
    """The metadata of a file written by `save_tree` (step, epoch, config...), from its header alone."""
    meta, _ = _read(Path(path), "cpu", tensors=False)
    meta.pop("tree")
    return meta


def _read(path: Path, device, tensors: bool) -> tuple[dict, dict]:
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            raw = (f.metadata() or {}).get("cyclegan")
            loaded = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError) as e:  # not CUDA's errors (out of memory, driver): those are no file's fault
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if raw is None:
        raise UserError(f"{path}: a safetensors file without cyclegan metadata; pass a file written by `cyclegan train`")
    return json.loads(raw), loaded


def save_weights(path: str | Path, net: torch.nn.Module, meta: dict) -> None:
    """One network's weights and JSON metadata (its format, architecture...) in one safetensors file, atomically:
    the judges of evaluation (classifiers, segmenters)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={"cyclegan": json.dumps(meta)}))


def load_weights(path: str | Path, fmt: str, what: str, hint: str, build) -> tuple[torch.nn.Module, dict]:
    """(network, metadata) of a file written by `save_weights` whose format is `fmt`: `build(meta)` makes the
    network, which gets the file's weights. `what` names the kind of file in errors, `hint` where to get one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} not found ({hint})")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get("cyclegan", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise UserError(f"{path}: not a {what} file (format {found!r}, expected {fmt})")
    net = build(meta)
    net.load_state_dict(tensors)
    return net, meta


def save_model(path: str | Path, nets: dict[str, torch.nn.Module], meta: dict) -> None:
    """Inference snapshot: {name: state_dict} of the given networks plus metadata."""
    tree = {name: {k: v for k, v in _plain_state_dict(net).items()} for name, net in nets.items()}
    save_tree(path, tree, {"format": FORMAT_MODEL, **meta})


def _plain_state_dict(net: torch.nn.Module) -> dict:
    """state_dict without wrapper prefixes (torch.compile's `_orig_mod.`, DDP's `module.`)."""
    return unwrap(net).state_dict()


def load_model(path: str | Path, device="cpu") -> tuple[dict, dict]:
    tree, meta = load_tree(path, device)
    if meta.get("format") not in (FORMAT_MODEL, FORMAT_STATE):
        raise UserError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    if meta["format"] == FORMAT_STATE:
        tree = tree["nets"]
    return tree, meta


def resolve_checkpoint(path: str | Path, kind: str = "model") -> Path:
    """A run directory -> its latest checkpoint of that kind; a package folder (cyclegan.package) -> its
    model.safetensors; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        package = (path / "model.safetensors",) if kind == "model" else ()
        for candidate in (path / "checkpoints" / f"latest.{kind}.safetensors", path / f"latest.{kind}.safetensors", *package):
            if candidate.is_file():
                return candidate
        raise UserError(f"{path}: no checkpoints/latest.{kind}.safetensors in this folder; is it a run directory of "
                        "`cyclegan train` (or a package folder of `cyclegan package`)?")
    if not path.exists():
        raise UserError(f"checkpoint {path} not found")
    return path


def parse_init_from(spec: str, exist: bool = True) -> list[tuple[str | None, Path]]:
    """"PATH,NET=PATH,..." -> [(None, PATH), (NET, PATH), ...]; with `exist`, the paths must exist."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        net, sep, path = item.partition("=")
        if not sep or Path(item).exists():  # a path may hold "=" itself (runs/lr=2e-4)
            net, path = None, item
        elif not net.isidentifier() or not path:
            raise UserError(f"train.init_from: {item!r} is neither PATH nor NET=PATH (e.g. G_A=latest_net_G_A.pth)")
        if exist and not Path(path).exists():
            raise UserError(f"train.init_from: {path} not found")
        out.append((net, Path(path)))
    return out
