"""The binary weights of the original BitNet (Wang et al. 2023, "BitNet: Scaling 1-bit Transformers for Large
Language Models", arXiv 2310.11453, section 2.1), written once for the loader, the training model and the tests.

Per group g of G contiguous groups of output rows (G = 1: the whole tensor):
    alpha_g = mean(W_g)                  the weights are centralized to zero mean before binarization
    W_b     = Sign(W_g - alpha_g)        Sign(w) = +1 for w > 0, -1 for w <= 0 (the paper's definition)
    beta_g  = mean(|W_g|)                ||W_g||_1 / (rows * K): the scale that keeps the l2 error small
and the linear computes y = (x_q . W_b) / s * beta (beta per row: each row carries its group's).
Binary weights are codes 0 (-1) and 2 (+1) of edgebit's ternary layout, so the ternary kernels run them as they
are; code 1 (zero) never occurs.
"""

from __future__ import annotations

import torch

WEIGHT_EPS = 1e-5  # beta's floor, as the ternary gamma's: an all-zero group must not give a zero scale


def binarize(w: torch.Tensor, groups: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_b int8 in {-1, +1} [N, K], beta fp32 [groups]) of a float weight [N, K]; N % groups == 0."""
    w = w.float()
    n = w.shape[0]
    if n % groups:
        raise ValueError(f"{groups} groups do not divide {n} rows")
    g = w.reshape(groups, -1)  # (G, N/G * K): each group's rows, contiguous
    alpha = g.mean(dim=1, keepdim=True)
    beta = g.abs().mean(dim=1).clamp(min=WEIGHT_EPS)
    w_b = torch.where(g - alpha > 0, 1, -1).to(torch.int8).reshape(w.shape)
    return w_b, beta


def row_scales(beta: torch.Tensor, rows: int) -> torch.Tensor:
    """beta [groups] -> fp32 [rows], each row its group's scale (the ops' per-channel gamma)."""
    return beta.float().repeat_interleave(rows // beta.numel())
