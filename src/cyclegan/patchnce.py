"""PatchNCE, the contrastive loss of CUT (Park, Efros, Zhang and Zhu 2020, "Contrastive Learning for
Unpaired Image-to-Image Translation", Sec. 3.2).

  Eq. 2  l(v, v+, v-) = -log[ exp(v.v+ / tau) / (exp(v.v+ / tau) + sum_n exp(v.v-_n / tau)) ]:
         a (N+1)-way classification of the query v (a patch of the output G(x)) between its positive v+
         (the input x's patch at the same place) and N negatives v- (the input's patches elsewhere).
  Eq. 3  L_PatchNCE(G, H, X) = E_x sum_l sum_s l(z^_l^s, z_l^s, z_l^{S \\ s}), with z_l = H_l(G_enc^l(x)) and
         z^_l = H_l(G_enc^l(G(x))): every sampled position s of every layer l, negatives from the same image.

As the reference (`PatchNCELoss`): the keys z (input side) are detached, the positive logit comes first,
the negatives are all P keys of the image with the query's own position masked to -10 before the division
by tau (exp(-10 / 0.07) ~ 1e-62: no term), and the loss is the mean over queries (sum -> mean in Eq. 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASKED_LOGIT = -10.0  # the reference's fill for a query's own position among its negatives


def patch_nce_loss(
    queries: torch.Tensor, keys: torch.Tensor, *, images: int, temperature: float = 0.07
) -> torch.Tensor:
    """Mean of Eq. 2 over the rows of `queries` (B * P, C), each against the row of `keys` (B * P, C) at
    the same index (positive) and the other P - 1 keys of the same image (negatives; rows are ordered
    image by image, `images` = B). Both are L2-normalised projections; `keys` get no gradient."""
    n, dim = queries.shape
    assert keys.shape == queries.shape and n % images == 0, (queries.shape, keys.shape, images)
    keys = keys.detach()
    q, k = queries.float(), keys.float()
    positive = (q * k).sum(1, keepdim=True)  # (B * P, 1)
    q, k = q.view(images, -1, dim), k.view(images, -1, dim)
    patches = q.shape[1]
    negative = torch.bmm(q, k.transpose(1, 2))  # (B, P, P): query i of an image against all its keys j
    own = torch.eye(patches, device=q.device, dtype=torch.bool)[None]
    negative = negative.masked_fill(own, MASKED_LOGIT).view(-1, patches)
    logits = torch.cat([positive, negative], 1) / temperature  # (B * P, 1 + P), the positive is class 0
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=q.device))
