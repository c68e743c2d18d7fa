"""edgebit's packed ternary weight layout (the one the kernels read) and conversion from the HF layout.

Layout version 2 (also in docs/weight-layout.md):
  A ternary matrix W_t [N, K] (N outputs, K inputs, any K >= 1) is stored as uint8 [N, Kp/4], row-major, where
  Kp = ceil(K/128)*128 (padded_k), plus one fp32 gamma per tensor. Row n is Kp/128 blocks of 32 bytes. Byte j of
  block b holds the codes of k = 128*b + 32*i + j in bits 2i..2i+1 (i = 0..3); code = w + 1, so 0 -> -1, 1 -> 0,
  2 -> +1 (3 is invalid). The padding weights k >= K hold code 1 (weight 0).
  Version 1 was the same with K % 128 == 0 required: for such K the bytes are identical.
Why this shape: 32 bytes unpack with four shifts and one mask into four runs of 32 consecutive weights that
line up with 32 consecutive int8 activations, in a 256-bit register or two 128-bit ones, with no shuffles;
the unsigned codes feed unsigned-by-signed dot products (maddubs, vpdpbusd, or SDOT after subtracting 1),
and each output row's bytes are contiguous so decode (M=1) streams memory linearly.
Why padding rather than a tail block: every kernel keeps working on whole blocks (the kernels zero-pad the
activations to Kp, so the padding adds nothing); published checkpoints have widths like 8640 and 5460.

The HF packed checkpoint layout (transformers' BitLinear, "quantization_mode": "offline") is different:
uint8 [N/4, K], packed along the OUTPUT axis in four contiguous blocks of N/4 rows: bits 2i..2i+1 of
packed[j, k] hold row i*N/4 + j.
"""

from __future__ import annotations

import torch

from edgebit.errors import LayoutError

LAYOUT_VERSION = 2
BLOCK_K = 128  # weights per block along K
BLOCK_BYTES = BLOCK_K // 4
PAD_CODE = 1  # the code of the padding weights k >= K: weight 0
_SHIFTS = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)


def padded_k(k: int) -> int:
    """K rounded up to whole 128-weight blocks: the weights a packed row holds."""
    return -(-k // BLOCK_K) * BLOCK_K


def packed_row_bytes(k: int) -> int:
    """Bytes of one packed row for in_features k: padded_k(k) / 4."""
    return padded_k(k) // 4


def check_packable(n: int, k: int, what: str) -> None:
    if n <= 0 or k <= 0:
        raise LayoutError(
            f"{what}: shape [{n}, {k}] cannot be packed: layout v{LAYOUT_VERSION} needs positive out_features and "
            f"in_features"
        )


def pack_ternary(w_t: torch.Tensor) -> torch.Tensor:
    """int8 W_t [N, K] with values in {-1, 0, 1} -> uint8 [N, packed_row_bytes(K)] in layout v2."""
    return codes_to_layout((w_t.to(torch.int16) + 1).to(torch.uint8), "pack_ternary")


def unpack_codes(packed: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 [N, packed_row_bytes(K)] in layout v2 -> uint8 codes [N, K] (w + 1), the padding dropped."""
    n = packed.shape[0]
    check_packable(n, k, "unpack_ternary")
    kp = padded_k(k)
    if tuple(packed.shape) != (n, kp // 4) or packed.dtype != torch.uint8:
        raise LayoutError(f"unpack_ternary: expected uint8 [{n}, {kp // 4}] for in_features {k} (layout "
                          f"v{LAYOUT_VERSION}: ceil(K/{BLOCK_K})*{BLOCK_BYTES} bytes a row), got "
                          f"{packed.dtype}{list(packed.shape)}")
    blocks = packed.reshape(n, kp // BLOCK_K, 1, BLOCK_BYTES)
    codes = ((blocks >> _SHIFTS.view(1, 1, 4, 1)) & 3).reshape(n, kp)
    return codes if kp == k else codes[:, :k].contiguous()


def unpack_ternary(packed: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 [N, packed_row_bytes(K)] in layout v2 -> int8 W_t [N, K]."""
    return unpack_codes(packed, k).to(torch.int8) - 1


def hf_unpack_codes(packed: torch.Tensor) -> torch.Tensor:
    """HF packed uint8 [N/4, K] -> uint8 codes [N, K] (w + 1), rows in the checkpoint's order."""
    rows, k = packed.shape
    planes = [(packed >> (2 * i)) & 3 for i in range(4)]  # plane i holds rows i*N/4 .. (i+1)*N/4
    return torch.cat(planes, dim=0).reshape(4 * rows, k)


def hf_pack(w_t: torch.Tensor) -> torch.Tensor:
    """int8 W_t [N, K] -> HF packed uint8 [N/4, K] (what transformers' BitLinear loads)."""
    n, k = w_t.shape
    if n % 4:
        raise LayoutError(f"hf_pack: out_features {n} is not a multiple of 4")
    codes = (w_t.to(torch.int16) + 1).to(torch.uint8).reshape(4, n // 4, k)
    return codes[0] | (codes[1] << 2) | (codes[2] << 4) | (codes[3] << 6)


def codes_to_layout(codes: torch.Tensor, what: str, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 codes [N, K] -> layout v2 (into `out` [N, packed_row_bytes(K)] if given), the padding weights
    set to code 1, refusing code 3 (no ternary value) with the tensor's name."""
    bad = codes == 3
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise LayoutError(f"{what}: packed code 3 at row {row}, column {col}; ternary codes are 0, 1, 2")
    n, k = codes.shape
    check_packable(n, k, what)
    kp = padded_k(k)
    if kp != k:
        full = torch.full((n, kp), PAD_CODE, dtype=torch.uint8)
        full[:, :k] = codes
        codes = full
    c = codes.reshape(n, kp // BLOCK_K, 4, BLOCK_BYTES)
    packed = (c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)).reshape(n, kp // 4)
    if out is None:
        return packed
    out.copy_(packed)
    return out
