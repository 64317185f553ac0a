"""Loading generator checkpoints of the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix).

Those are `torch.save(net.state_dict())` files (`latest_net_G_A.pth`, `latest_net_G.pth`, ...). They are
read with `torch.load(weights_only=True)`, which refuses pickled code. Our networks keep the reference's
module layout, so keys match one to one; the architecture is inferred from the key names and shapes
(or given explicitly). Old files carry running statistics for InstanceNorm layers (which have none
with track_running_stats=False); these are dropped, as the reference's own loader does.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from .errors import UserError, torch_load_problem
from .nets import create_generator

_INSTANCE_STATS = ("running_mean", "running_var", "num_batches_tracked")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises pickle/unpickling errors of several types
        raise UserError(torch_load_problem(path, e)) from None
    if hasattr(sd, "state_dict") and not isinstance(sd, dict):
        sd = sd.state_dict()
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path}: expected a state dict of tensors (the reference's torch.save(net.state_dict()))")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def infer_generator(sd: dict[str, torch.Tensor]) -> tuple[str, dict]:
    """(registry name, kwargs) of the reference generator that wrote this state dict."""
    batch = any(
        k.endswith(".weight") and v.dim() == 1 and k.replace(".weight", ".running_mean") in sd for k, v in sd.items()
    )
    norm = "batch" if batch else "instance"
    if "model.1.weight" in sd and sd["model.1.weight"].dim() == 4 and sd["model.1.weight"].shape[-1] == 7:
        blocks = {int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        dropout = any(".conv_block.6.weight" in k and v.dim() == 4 for k, v in sd.items())
        first = sd["model.1.weight"]
        last = max((k for k in sd if re.fullmatch(r"model\.\d+\.weight", k)), key=lambda k: int(k.split(".")[1]))
        n = len(blocks)
        name = {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(n)
        if name is None:
            raise UserError(f"a ResNet generator with {n} blocks; only 6 and 9 are registered")
        return name, dict(
            in_ch=first.shape[1], out_ch=sd[last].shape[0], ngf=first.shape[0], norm=norm, dropout=dropout
        )
    if "model.model.0.weight" in sd:
        depth = max(k.count("model.") for k in sd) - 1  # nesting depth of the skip blocks
        first = sd["model.model.0.weight"]
        out_key = max(
            (k for k in sd if k.startswith("model.model.") and k.endswith(".weight") and k.count("model.") == 2),
            key=lambda k: int(k.split(".")[2]),
        )
        name = {8: "unet_256", 7: "unet_128"}.get(depth)
        if name is None:
            raise UserError(f"a U-Net with {depth} levels; only unet_256 (8) and unet_128 (7) are registered")
        return name, dict(in_ch=first.shape[1], out_ch=sd[out_key].shape[1], ngf=first.shape[0], norm=norm)
    raise UserError("not a reference generator state dict (expected keys model.1.weight or model.model.0.weight)")


def load_reference_generator(path: str | Path, name: str | None = None, **kwargs) -> nn.Module:
    """Build our generator for a reference checkpoint and load it; `name`/kwargs override inference."""
    sd = read_state_dict(path)
    inferred_name, inferred = infer_generator(sd)
    name = name or inferred_name
    inferred.update({k: v for k, v in kwargs.items() if v is not None})
    net = create_generator(name, **inferred)
    sd, misfit = fit_state_dict(sd, net.state_dict())
    if misfit:
        raise UserError(f"{path}: does not fit {name} {inferred} ({misfit}); pass the right --netG/--ngf/--norm")
    net.load_state_dict(sd)
    return net


def fit_state_dict(sd: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> tuple[dict, str | None]:
    """`sd` without the InstanceNorm statistics of old files, and how it fails to fit `expected` (None if it fits):
    the first key of a different shape, else keys missing or unexpected."""
    sd = {k: v for k, v in sd.items() if k in expected or not k.endswith(_INSTANCE_STATS)}
    wrong = [k for k in expected if k in sd and sd[k].shape != expected[k].shape]
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    if wrong:
        return sd, f"{wrong[0]}: {tuple(sd[wrong[0]].shape)} in the file, {tuple(expected[wrong[0]].shape)} here"
    if missing or unexpected:
        return sd, f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
    return sd, None
