"""Starting a new run from saved weights (`train.init_from`): fine-tuning, or continuing from pretrained models.

A source is a run directory or checkpoint of `cyclegan train`, a reference-implementation `.pth` state dict,
or a folder of the reference's `latest_net_<NET>.pth` files; `NET=PATH` loads one network only (what a
downloaded pretrained generator needs: `G_A=horse2zebra.pth`). Sources are applied in order, a later one
replacing what an earlier one loaded. Networks no source holds keep their fresh N(0, 0.02) initialisation;
optimizers, pools, schedule and step count always start new (`--resume` is what continues a run).

From a resume state (a run directory, `*.state.safetensors`) the networks being trained are taken, with
their discriminators, not the moving average a run may also keep; a model snapshot (`*.model.safetensors`)
holds only the inference networks, i.e. the generators (their average when the run kept one).
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from .. import checkpoint as ckpt
from ..checkpoint import parse_init_from
from ..config import Config
from ..errors import UserError
from ..reference import fit_state_dict, infer_generator, read_state_dict
from ..runtime import unwrap

_REFERENCE_NAME = re.compile(r"(?:.+_)?net_(\w+)\.pth$")  # the reference's <epoch>_net_<NET>.pth
_SHAPE_FIELDS = ("generator", "discriminator", "n_layers_d", "ngf", "ndf", "norm", "dropout")


def load_initial_weights(nets: nn.ModuleDict, cfg: Config) -> dict[str, str]:
    """Load `cfg.train.init_from` into `nets` (in place); returns {network: the file it came from}."""
    loaded: dict[str, str] = {}
    for net, path in parse_init_from(cfg.train.init_from):
        if net is not None and net not in nets:
            raise UserError(
                f"train.init_from: {net}={path}: this run has no network {net} (its networks: {', '.join(nets)})"
            )
        held, trained, source = _read_source(path, net)
        usable = {k: sd for k, sd in held.items() if k in nets}
        if not usable:
            raise UserError(
                f"train.init_from: {source} holds {', '.join(held)}, none of this run's networks "
                f"({', '.join(nets)}); say which to load it into: NET={path}"
            )
        for name, sd in usable.items():
            _load_into(unwrap(nets[name]), sd, name, source, cfg, trained)
            loaded[name] = str(source)
    return loaded


def describe(loaded: dict[str, str], names) -> str:
    """One line for the terminal: which network came from where, which start fresh."""
    by_source: dict[str, list[str]] = {}
    for name, source in loaded.items():
        by_source.setdefault(source, []).append(name)
    parts = [f"{', '.join(n)} from {s}" for s, n in by_source.items()]
    fresh = [n for n in names if n not in loaded]
    return "initial weights: " + "; ".join(parts) + (f"; {', '.join(fresh)} fresh" if fresh else "")


def _read_source(path: Path, net: str | None) -> tuple[dict[str, dict], dict | None, Path]:
    """({network: state dict}, the config it was trained with or None for reference files, the file read)."""
    if path.is_dir():
        for kind in ("state", "model"):
            for f in (path / "checkpoints" / f"latest.{kind}.safetensors", path / f"latest.{kind}.safetensors"):
                if f.is_file():
                    return _read_source(f, net)
        files = {m.group(1): p for p in sorted(path.glob("latest_net_*.pth")) if (m := _REFERENCE_NAME.match(p.name))}
        if net is not None:
            files = {net: files[net]} if net in files else {}
        if not files:
            want = f"latest_net_{net}.pth" if net else "latest_net_<NET>.pth files"
            raise UserError(
                f"train.init_from: {path} is neither a run directory of `cyclegan train` "
                f"(checkpoints/latest.*.safetensors) nor a folder of the reference's {want}"
            )
        return {k: read_state_dict(p) for k, p in files.items()}, None, path
    if path.suffix in (".pth", ".pt"):
        name = net
        if name is None:
            m = _REFERENCE_NAME.match(path.name)
            if m is None:
                raise UserError(
                    f"train.init_from: which network does {path} hold? Name it: G_A={path} "
                    "(the reference's files are called <epoch>_net_<NET>.pth)"
                )
            name = m.group(1)
        return {name: read_state_dict(path)}, None, path
    tree, meta = ckpt.load_model(path)
    if net is not None:
        if net not in tree:
            where = "; a run's discriminators are in its latest.state.safetensors" if net.startswith("D") else ""
            raise UserError(f"train.init_from: {path} holds no network {net} (it holds {', '.join(tree)}{where})")
        tree = {net: tree[net]}
    return tree, meta.get("config"), path


def _load_into(net: nn.Module, sd: dict, name: str, source: Path, cfg: Config, trained: dict | None) -> None:
    sd, misfit = fit_state_dict(sd, net.state_dict())
    if misfit:
        raise UserError(
            f"train.init_from: {name} of {source} does not fit this run's {name} ({misfit}); "
            + _hint(name, sd, cfg, trained)
        )
    net.load_state_dict(sd)


def _hint(name: str, sd: dict, cfg: Config, trained: dict | None) -> str:
    """How to make this run's networks match the file's."""
    if trained is not None:
        model, data = trained["model"], trained["data"]
        fields = [f"model.{k}={model[k]}" for k in _SHAPE_FIELDS if model.get(k) != getattr(cfg.model, k)]
        fields += [f"data.{k}={data[k]}" for k in ("channels_a", "channels_b") if data.get(k) != getattr(cfg.data, k)]
        if fields:
            return "it was trained with " + " ".join(f"--set {f}" for f in fields) + "; give the same"
        return "its run used another method or network; give the same model settings"
    if name.startswith("G"):
        try:
            arch, kw = infer_generator(sd)
        except UserError:
            return "the file does not look like a reference generator"
        return (
            f"it holds a {arch} generator (ngf {kw['ngf']}, {kw['norm']} norm, {kw['in_ch']} -> {kw['out_ch']} channels"
            + (", dropout" if kw.get("dropout") else "")
            + f"); give --set model.generator={arch} --set model.ngf={kw['ngf']}"
            + (f" --set model.norm={kw['norm']}" if kw["norm"] != cfg.model.norm else "")
            + (" --set model.dropout=true" if kw.get("dropout") and not cfg.model.dropout else "")
        )
    first = sd.get("model.0.weight")
    if first is not None and first.dim() == 4:
        return (
            f"its first layer has {first.shape[0]} filters on {first.shape[1]} channels; "
            f"give --set model.ndf={first.shape[0]} (and model.discriminator / model.n_layers_d as trained)"
        )
    return "give the model settings it was trained with"
