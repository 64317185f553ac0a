"""Instance norm and reflection padding that keep their input's memory format and dtype.

Drop-in subclasses of `nn.InstanceNorm2d` and `nn.ReflectionPad2d` (same names, no parameters, same
state_dict: reference checkpoints load as before). On a contiguous NCHW float32 input they run the stock
operators, so float32 results are bit-identical; they differ only where the stock ones waste work
(measured with benchmarks/profile_step.py, docs/performance.md):

- `F.instance_norm` makes its input contiguous (`input.contiguous().view(1, B*C, H, W)`), so in a
  channels_last network every instance norm converted NHWC -> NCHW and the next convolution converted
  back, forward and backward; a batch of one is normalised over exactly the axes batch norm uses, so for
  a channels_last input `F.batch_norm(training=True)` on each sample computes the same statistics
  (Ulyanov et al. 2016, Eq. 4) in place, without the conversions (and without PyTorch 2.14's wrong
  instance-norm input gradient for channels_last gradients, see train/state.py's guard).
- CPU autocast lists `reflection_pad2d` among the float32 operators, so under bfloat16 autocast every
  padding cast its bf16 input up to float32 and the next convolution cast it back down. Padding only
  copies values, so running it in the input's own dtype gives the same numbers at half the bytes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def is_channels_last(x: torch.Tensor) -> bool:
    """A 4-d tensor laid out NHWC (and not also plain NCHW-contiguous, as 1x1 or single-channel maps are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def eager_cpu_float(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Where this package's own float CPU convolution code (nets/winograd.py, nets/weight_grad.py) may run: a 4-d
    float32/float64 CPU input of the weight's dtype, outside CPU autocast and torch.compile's tracing; elsewhere
    those layers run the stock convolution."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and weight.dtype == x.dtype
        and x.dim() == 4
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


class InstanceNorm2d(nn.InstanceNorm2d):
    """`nn.InstanceNorm2d` that normalises a channels_last batch in channels_last, sample by sample."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or not is_channels_last(x):
            return super().forward(x)
        # (1, C, H, W): per-channel statistics over (N, H, W) = over (H, W), the instance norm of the sample.
        # A batch of several (the fused passes of methods/fused.py give two) goes sample by sample: each
        # row of a channels_last batch is a channels_last batch of one, and split/cat keep the layout (the
        # stock layer's view(1, B*C, H, W) would convert; per sample and cat: 5x less time, fwd + bwd).
        rows = [
            F.batch_norm(row, None, None, self.weight, self.bias, training=True, momentum=0.0, eps=self.eps)
            for row in x.split(1)
        ]
        return rows[0] if len(rows) == 1 else torch.cat(rows)


class ReflectionPad2d(nn.ReflectionPad2d):
    """`nn.ReflectionPad2d` that pads in its input's dtype under autocast (exact: it only copies values)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):  # e.g. "meta"
            return super().forward(x)
        with torch.autocast(device, enabled=False):
            return super().forward(x)
