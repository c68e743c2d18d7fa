"""ExecuTorch's stock low-bit path, the baseline edgebit's op is measured against (`--ops torchao-8da4w`): the same
ternary weights as float nn.Linear layers quantized by torchao's Int8DynamicActivationIntxWeightConfig (int8
dynamic per-token activations, int4 weights in groups of 32, which hold ternary codes times gamma exactly) and
lowered to XNNPACK. No edgebit op and no op library: what a user of ExecuTorch gets without edgebit. Its logits
differ from the reference by torchao's activation quantization (asymmetric per token, not BitNet's absmax)."""

from __future__ import annotations

import torch
from torch import nn

from edgebit.errors import EdgebitError
from edgebit.model.weights import TernaryWeight
from edgebit.quant.packing import unpack_ternary

GROUP_SIZE = 32


def check_widths(cfg) -> None:
    """XNNPACK's int4 linear takes whole groups of GROUP_SIZE weights along in_features (its delegate asserts
    group_size % 32 == 0, per-channel included), so a width like 200 or 540 has no stock 8da4w form; padding the
    activations would no longer be the stock path this baseline stands for. Refused before anything is written."""
    odd = sorted({k for _, k in cfg.linear_shapes().values() if k % GROUP_SIZE})
    if odd:
        raise EdgebitError(f"--ops torchao-8da4w: this model's in_features {', '.join(map(str, odd))} are not "
                           f"multiples of {GROUP_SIZE}, which torchao's int4 groups on XNNPACK need; "
                           f"use --ops edgebit (any width)")


def _quantize(linear: nn.Linear, weight_dtype: torch.dtype) -> nn.Linear:
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    granularity = PerGroup(GROUP_SIZE) if weight_dtype == torch.int4 else PerAxis(0)
    quantize_(linear, Int8DynamicActivationIntxWeightConfig(weight_dtype=weight_dtype, weight_granularity=granularity))
    return linear


class TorchaoLinear(nn.Module):
    """Linears sharing an input, concatenated along N, as one 8da4w linear. Each float weight exists only while
    its layer is being quantized (a 2B4T-shaped model never holds its fp32 weights at once)."""

    def __init__(self, weights: list[TernaryWeight]):
        super().__init__()
        w = torch.cat([unpack_ternary(t.packed, t.in_features).float() * t.gamma.float().reshape(-1, 1) for t in weights])
        linear = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(w)
        del w
        self.linear = _quantize(linear.requires_grad_(False), torch.int4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def int8_head(table: torch.Tensor) -> nn.Linear:
    """The head as torchao 8da8w (per-row int8 weights), the stock counterpart of edgebit's int8 head."""
    linear = nn.Linear(table.shape[1], table.shape[0], bias=False)
    with torch.no_grad():
        linear.weight.copy_(table.float())
    return _quantize(linear.requires_grad_(False), torch.int8)
