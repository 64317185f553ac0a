"""Pure loss functions of the CycleGAN objective (Zhu et al. 2017, Sec. 3) and its relatives.

Equation numbers refer to the CycleGAN paper:
  Eq. 1  L_GAN(G, D_Y, X, Y) = E_y[log D_Y(y)] + E_x[log(1 - D_Y(G(x)))]; in practice (Sec. 4, "Training
         details") the negative log likelihood is replaced by a least-squares loss (LSGAN, Mao et al.):
         G minimises E_x[(D(G(x)) - 1)^2] and D minimises E_y[(D(y) - 1)^2] + E_x[D(G(x))^2].
  Eq. 2  L_cyc(G, F) = E_x[||F(G(x)) - x||_1] + E_y[||G(F(y)) - y||_1].
  Eq. 3  L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X) + lambda L_cyc(G, F).
  Identity loss (Sec. 5.2, "photo generation from paintings", after Taigman et al.):
         L_identity(G, F) = E_y[||G(y) - y||_1] + E_x[||F(x) - x||_1].
Semantic consistency (not in CycleGAN; CyCADA, Hoffman et al. 2018, Sec. 3): with a fixed classifier f,
         L_sem(G, F) = CE(f(G(x)), argmax f(x)) + CE(f(F(y)), argmax f(y)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "wgangp")


def gan_loss(pred: torch.Tensor, target_is_real: bool, mode: str = "lsgan") -> torch.Tensor:
    """Adversarial loss of discriminator outputs `pred` (any shape) against a real/fake target (Eq. 1).

    lsgan: mean (pred - t)^2 with t in {1, 0}; vanilla: BCE on logits; wgangp: -mean(pred) for real,
    +mean(pred) for fake (the critic's score).
    """
    if mode == "lsgan":
        return torch.mean((pred.float() - (1.0 if target_is_real else 0.0)) ** 2)
    if mode == "vanilla":
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred.float(), target.float())
    if mode == "wgangp":
        return -pred.float().mean() if target_is_real else pred.float().mean()
    raise ValueError(f"unknown gan mode {mode!r}; choose one of {GAN_MODES}")


def generator_gan_loss(pred_fake: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The generator's side of Eq. 1: make D call its output real (LSGAN: (D(G(x)) - 1)^2)."""
    return gan_loss(pred_fake, True, mode)


def discriminator_gan_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The discriminator's side of Eq. 1, halved as in the paper ("we divide the objective by 2 while
    optimizing D, which slows down the rate at which D learns relative to G")."""
    return 0.5 * (gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode))


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """One direction of Eq. 2: mean absolute error ||F(G(x)) - x||_1 (per pixel, as the reference)."""
    return F.l1_loss(reconstructed.float(), original.float())


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """One direction of the identity loss (Sec. 5.2): ||G(y) - y||_1, mean over pixels."""
    return F.l1_loss(mapped.float(), original.float())


def semantic_loss(logits_mapped: torch.Tensor, logits_source: torch.Tensor) -> torch.Tensor:
    """One direction of CyCADA's semantic consistency loss: cross-entropy of a fixed classifier's logits on
    the translation G(x) against the class it gives the source x (argmax, no gradient). The classifier's own
    labels, not ground truth: it penalises a translation that changes what the classifier sees."""
    return F.cross_entropy(logits_mapped.float(), logits_source.detach().argmax(1))


def gradient_penalty(
    discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, Eq. 3): weight * E[(||grad_x D(x_hat)||_2 - 1)^2] on
    random interpolates x_hat = a * real + (1 - a) * fake, a ~ U[0, 1] per sample.

    Builds a graph (create_graph=True) so the penalty's gradient reaches D's parameters.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device="cpu")
    if real.is_cuda:  # from pinned memory, so the copy does not wait for the GPU (no sync inside the step)
        alpha = alpha.pin_memory()
    alpha = alpha.to(real, non_blocking=True)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(2, dim=1)
    return weight * ((norm - 1.0) ** 2).mean()
