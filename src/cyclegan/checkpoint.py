"""Checkpoints as safetensors (tensors) + JSON (everything else): never pickled objects.

Two kinds of file, both written atomically (temporary file, fsync of the file, rename, fsync of the folder):
- a model snapshot `*.model.safetensors`: the inference networks' weights, plus JSON metadata with
  the method, network specs and data config, enough to rebuild and run them with no training config;
- a resume state `*.state.safetensors`: every network, both optimizers, the pools, RNG states, the
  schedule and the position in training, so `--resume` continues as if never stopped. `save_state` keeps the
  one before beside it (`previous.state.safetensors`), and drops it only once the new file has been read back
  (size and header); `--resume` falls back to it when the latest is damaged (`resume_state`).
Any nested structure of dicts, lists, numbers, strings and tensors is stored: tensors go into the
safetensors payload, the rest into a JSON tree that points at them.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import tempfile
import warnings
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
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: the directory entry is data of the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform or file system without directory handles (Windows): nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_tree(path: str | Path, tree: dict, meta: dict) -> None:
    """Write a nested tree of tensors and plain values, with `meta` (JSON-able), atomically."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(tree, "", tensors)
    metadata = {"cyclegan": json.dumps({**meta, "tree": encoded})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def previous_path(path: str | Path) -> Path:
    """Where `save_state` keeps the state before `path`: checkpoints/latest.state.safetensors ->
    checkpoints/previous.state.safetensors."""
    path = Path(path)
    return path.with_name("previous." + path.name.removeprefix("latest."))


def save_state(path: str | Path, tree: dict, meta: dict) -> None:
    """`save_tree` with rotation: the new file is written beside `path` (fsync), read back (`verify_file`), and
    only then does `path` become `previous_path(path)` (dropping the one before) and the new file `path`.

    A failed write (disk full, a dying node) leaves both earlier files as they were and raises a UserError
    that says so; a crash between the two renames leaves the previous state, which `resume_state` finds."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(tree, "", tensors)
    metadata = {"cyclegan": json.dumps({**meta, "tree": encoded})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            save_file(tensors, tmp, metadata=metadata)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except (OSError, SafetensorError) as e:
            raise UserError(f"could not write {path} ({_os_reason(e)}); {_intact(path)}") from None
        problem = verify_file(tmp)
        if problem:
            raise UserError(f"{path} was written but does not read back ({problem}); {_intact(path)}")
        if path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _os_reason(e: BaseException) -> str:
    if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in str(e):
        return "no space left on the device"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _intact(path: Path) -> str:
    if path.exists():
        return f"the {path.name} saved before is intact: free space (or fix the disk) and continue with --resume"
    return "nothing was saved"


def verify_file(path: str | Path) -> str | None:
    """Why the safetensors file at `path` is damaged (None if its header parses and its size is the header's).

    Reads the 8-byte header length, the JSON header and the end offset of its last tensor: a truncated
    file, a header cut or overwritten, or trailing garbage are caught without reading the tensors."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"truncated: the header says {n} bytes of header, the file holds {size - 8}"
            header = json.loads(f.read(n))
    except OSError as e:
        return f"cannot read it ({e.strerror or e})"
    except (ValueError, UnicodeDecodeError) as e:
        return f"its header is not valid JSON ({e})"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    expected = 8 + n + max(ends, default=0)
    if size != expected:
        return f"{'truncated' if size < expected else 'trailing bytes'}: {size} bytes, the header says {expected}"
    return None


def resume_state(run_dir: str | Path) -> Path:
    """The resume state to continue `run_dir` from: checkpoints/latest.state.safetensors, or, when that one is
    missing or damaged, previous.state.safetensors (with a warning that names the damaged file)."""
    d = Path(run_dir) / "checkpoints"
    latest, previous = d / "latest.state.safetensors", d / "previous.state.safetensors"
    problem = verify_file(latest) if latest.is_file() else "missing"
    if problem is None:
        return latest
    if previous.is_file() and verify_file(previous) is None:
        warnings.warn(
            f"{latest} is damaged ({problem}); resuming from {previous.name}, the state saved before it "
            f"(step {read_meta(previous).get('step', '?')})",
            stacklevel=2,
        )
        return previous
    if latest.is_file():
        raise UserError(
            f"{latest} is damaged ({problem}) and there is no readable previous.state.safetensors "
            "beside it; the run cannot resume (its model snapshots may still translate)"
        )
    raise UserError(f"{run_dir}: no checkpoints/latest.state.safetensors there; nothing to resume")


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
    except (
        SafetensorError,
        OSError,
        ValueError,
    ) as e:  # not CUDA's errors (out of memory, driver): those are no file's fault
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if raw is None:
        raise UserError(
            f"{path}: a safetensors file without cyclegan metadata; pass a file written by `cyclegan train`"
        )
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
        for candidate in (
            path / "checkpoints" / f"latest.{kind}.safetensors",
            path / f"latest.{kind}.safetensors",
            *package,
        ):
            if candidate.is_file():
                return candidate
        raise UserError(
            f"{path}: no checkpoints/latest.{kind}.safetensors in this folder; is it a run directory of "
            "`cyclegan train` (or a package folder of `cyclegan package`)?"
        )
    if not path.exists():
        raise UserError(f"checkpoint {path} not found")
    return path


def parse_init_from(spec: str, exist: bool = True) -> list[tuple[str | None, Path]]:
    """ "PATH,NET=PATH,..." -> [(None, PATH), (NET, PATH), ...]; with `exist`, the paths must exist."""
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
