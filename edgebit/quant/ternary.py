"""BitNet b1.58 quantizers, written once and used by the loader, the reference model and the tests.

The float expressions are spelled out so the C++ kernels can compute bit-identical results:
  activations (per token, i.e. per row):  s = 127 / max(max|x|, 1e-5)   (a true fp32 division)
                                          x_q = clamp(round_half_even(x * s), -128, 127)
  weights (per tensor, absmean):          gamma = max(mean|W|, 1e-5);  W_t = clamp(round(W * (1/gamma)), -1, 1)
The weight rule is transformers' own (WeightQuant: scale = 1/mean, round(W*scale)), so a bf16 master
checkpoint ternarizes here exactly as transformers ternarizes it.
"""

from __future__ import annotations

import torch

ACT_MAX = 127.0
ACT_EPS = 1e-5
WEIGHT_EPS = 1e-5


def absmean_ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_t int8 in {-1,0,1}, gamma fp32 0-dim) for a float weight of any shape."""
    w = w.float()
    gamma = w.abs().mean().clamp(min=WEIGHT_EPS)
    w_t = (w * gamma.reciprocal()).round_().clamp_(-1, 1).to(torch.int8)
    return w_t, gamma


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row int8 quantization of fp32 x (..., K): (x_q as fp32 integers, s (..., 1))."""
    absmax = x.abs().amax(dim=-1, keepdim=True).clamp(min=ACT_EPS)
    s = torch.full_like(absmax, ACT_MAX) / absmax  # not 127 / t, which torch computes as 127 * (1/t)
    x_q = (x * s).round().clamp(-128.0, 127.0)
    return x_q, s
