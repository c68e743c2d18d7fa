"""edgebit's packed ternary weight layout (the one the kernels read) and conversion from the HF layout.

Layout version 1 (also in docs/weight-layout.md):
  A ternary matrix W_t [N, K] (N outputs, K inputs, K % 128 == 0) is stored as uint8 [N, K/4], row-major,
  plus one fp32 gamma per tensor. Row n is K/128 blocks of 32 bytes. Byte j of block b holds the codes of
  k = 128*b + 32*i + j in bits 2i..2i+1 (i = 0..3); code = w + 1, so 0 -> -1, 1 -> 0, 2 -> +1 (3 is invalid).
Why this shape: 32 bytes unpack with four shifts and one mask into four runs of 32 consecutive weights that
line up with 32 consecutive int8 activations, in a 256-bit register or two 128-bit ones, with no shuffles;
the unsigned codes feed unsigned-by-signed dot products (maddubs, vpdpbusd, or SDOT after subtracting 1),
and each output row's bytes are contiguous so decode (M=1) streams memory linearly.

The HF packed checkpoint layout (transformers' BitLinear, "quantization_mode": "offline") is different:
uint8 [N/4, K], packed along the OUTPUT axis in four contiguous blocks of N/4 rows: bits 2i..2i+1 of
packed[j, k] hold row i*N/4 + j.
"""

from __future__ import annotations

import torch

from edgebit.errors import LayoutError

LAYOUT_VERSION = 1
BLOCK_K = 128  # weights per block along K
BLOCK_BYTES = BLOCK_K // 4
_SHIFTS = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)


def check_packable(n: int, k: int, what: str) -> None:
    if n <= 0 or k <= 0 or k % BLOCK_K:
        raise LayoutError(
            f"{what}: shape [{n}, {k}] cannot be packed: layout v{LAYOUT_VERSION} needs in_features a positive "
            f"multiple of {BLOCK_K}"
        )


def pack_ternary(w_t: torch.Tensor) -> torch.Tensor:
    """int8 W_t [N, K] with values in {-1, 0, 1} -> uint8 [N, K/4] in layout v1."""
    return codes_to_layout((w_t.to(torch.int16) + 1).to(torch.uint8), "pack_ternary")


def unpack_codes(packed: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 [N, K/4] in layout v1 -> uint8 codes [N, K] (w + 1)."""
    n = packed.shape[0]
    check_packable(n, k, "unpack_ternary")
    if tuple(packed.shape) != (n, k // 4) or packed.dtype != torch.uint8:
        raise LayoutError(f"unpack_ternary: expected uint8 [{n}, {k // 4}], got {packed.dtype}{list(packed.shape)}")
    blocks = packed.reshape(n, k // BLOCK_K, 1, BLOCK_BYTES)
    codes = (blocks >> _SHIFTS.view(1, 1, 4, 1)) & 3
    return codes.reshape(n, k)


def unpack_ternary(packed: torch.Tensor, k: int) -> torch.Tensor:
    """uint8 [N, K/4] in layout v1 -> int8 W_t [N, K]."""
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
    """uint8 codes [N, K] -> layout v1 (into `out` [N, K/4] if given), refusing code 3 (no ternary value)
    with the tensor's name."""
    bad = codes == 3
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise LayoutError(f"{what}: packed code 3 at row {row}, column {col}; ternary codes are 0, 1, 2")
    n, k = codes.shape
    check_packable(n, k, what)
    c = codes.reshape(n, k // BLOCK_K, 4, BLOCK_BYTES)
    packed = (c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)).reshape(n, k // 4)
    if out is None:
        return packed
    out.copy_(packed)
    return out
