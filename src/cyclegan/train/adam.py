"""Adam whose fused CPU kernel updates channels_last weights in place, without copies.

PyTorch's fused Adam on the CPU makes each non-contiguous tensor it is given contiguous (a copy of the
weight, its gradient and both moments) and copies the results back. In a channels_last network every
convolution weight is such a tensor, so the fused update, the fastest kernel otherwise, spent most of its
time copying: about 3% of a bfloat16 training step (benchmarks/profile_step.py, docs/performance.md).

Adam is element-wise (each weight's update depends on its own gradient and moments only), so it may run on
any view that visits the same elements. For the duration of the step each channels_last weight, its gradient
and its moments are viewed in storage order, (O, H, W, I), which is contiguous and the same memory; after it
they are viewed as (O, I, H, W) again. The numbers are those of the stock optimizer, bit for bit
(tests/train/test_adam.py), and so are state_dict() and checkpoints, which never see the storage-order view.
"""

from __future__ import annotations

import torch

from ..nets.layout import is_channels_last

TO_STORAGE, FROM_STORAGE = (0, 2, 3, 1), (0, 3, 1, 2)


class Adam(torch.optim.Adam):
    """`torch.optim.Adam`; with `fused=True` on the CPU, channels_last weights are updated in storage order."""

    def step(self, *args, **kwargs):
        viewed = self._view_in_storage_order()
        try:
            return super().step(*args, **kwargs)
        finally:
            for p in viewed:
                self._permute(p, FROM_STORAGE)

    def _view_in_storage_order(self) -> list[torch.Tensor]:
        viewed = []
        for group in self.param_groups:
            if not group.get("fused"):
                continue
            for p in group["params"]:
                if p.device.type == "cpu" and p.grad is not None and is_channels_last(p):
                    if p.grad.stride() != p.stride():  # the kernel would copy anyway; keep the stock path
                        continue
                    self._permute(p, TO_STORAGE)
                    viewed.append(p)
        return viewed

    def _permute(self, p: torch.Tensor, order: tuple[int, ...]) -> None:
        state = self.state.get(p, {})
        for k, v in state.items():  # the moments (exp_avg, exp_avg_sq, max_exp_avg_sq), not the step count
            if torch.is_tensor(v) and v.shape == p.shape:
                state[k] = v.permute(order)
        p.data = p.data.permute(order)
        p.grad = p.grad.permute(order)
