"""Feature loss + GAN, the CycleGAN paper's variant of SimGAN (Sec. 5.1.2): the self-regularisation L1 is
computed on deep features of a fixed pretrained network rather than on pixels,

    L(G) = L_GAN(G, D_Y, X, Y) + lambda_self_reg * ||phi(G(x)) - phi(x)||_1

(a "perceptual loss", Johnson et al. 2016). The paper's phi is VGG-16 relu4_2 (`loss.feature_net=vgg16`
with `loss.feature_weights=PATH`); the offline default is the FID Inception network up to Mixed_5d (see
`cyclegan.nets.perceptual` for how the two differ). phi is loaded on the first training step, kept out of the
checkpoints (it is fixed), and never needed for translation.
"""

from __future__ import annotations

import torch

from ..errors import UserError
from ..nets.perceptual import (
    FEATURE_NETS,
    FeatureNet,
    InceptionFeatures,
    VGG16Features,
    create_feature_net,
    feature_distance,
)
from .base import METHODS, NetSpec
from .simgan import SimGAN

MIN_SIZE = {"inception": InceptionFeatures.min_size, "vgg16": VGG16Features.min_size}


@METHODS.register("feature_gan")
class FeatureGAN(SimGAN):
    """SimGAN with the L1 term on phi features (phi frozen; its gradient reaches G through phi(G(x)))."""

    name = "feature_gan"

    def __init__(self, cfg):
        super().__init__(cfg)
        self._phi: FeatureNet | None = None

    def specs(self) -> dict[str, NetSpec]:
        w, d = self.cfg.loss, self.cfg.data
        if w.feature_net not in FEATURE_NETS:
            raise UserError(f"unknown loss.feature_net {w.feature_net!r}; choose one of: {', '.join(FEATURE_NETS)}")
        if d.channels_a not in (1, 3) or d.channels_b not in (1, 3):
            raise UserError(
                f"feature_gan's feature network reads grey or RGB images, not {d.channels_a}/{d.channels_b} channels"
            )
        if d.crop_size < MIN_SIZE[w.feature_net]:
            raise UserError(
                f"feature_net {w.feature_net} needs images of at least {MIN_SIZE[w.feature_net]} pixels, "
                f"data.crop_size is {d.crop_size}"
            )
        return super().specs()

    def feature_net(self, device: torch.device) -> FeatureNet:
        """phi, loaded once (from loss.feature_weights, or the FID weights for inception) on `device`."""
        if self._phi is None:
            w = self.cfg.loss
            self._phi = create_feature_net(w.feature_net, w.feature_weights or None)
        return self._phi.to(device)

    def self_regularization(self, mapped: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """||phi(G(x)) - phi(x)||_1, mean over feature elements."""
        return feature_distance(self.feature_net(mapped.device), mapped, source)
