"""GGUF ternary tensors -> edgebit's codes uint8 [N, K] (w + 1) and one fp32 gamma (y = (x_q . W) / s * gamma).

Each decoder is written from the format's definition (docs/weight-layout.md cites them); the tests hold TQ1_0 and
TQ2_0 to the gguf package's own dequantizer and I2_S to bitnet.cpp's quantize_i2_s as documented. Numpy only, one
tensor at a time: the raw bytes plus the codes are what is in memory, never a float copy of the weights.

- TQ2_0 (ggml, 256 weights / 66 bytes): qs[64] then fp16 d. Byte 32*h + m holds weights 128*h + 32*l + m in bits
  2l..2l+1 (h = 0..1, l = 0..3); code = w + 1.
- TQ1_0 (256 weights / 54 bytes): qs[48] qh[4] fp16 d. Each byte holds 5 (qh: 4) base-3 digits as
  ceil(v * 256 / 243); digit i is ((byte * 3^i mod 256) * 3) >> 8. qs[0:32] -> weights 32*i + m (i = 0..4),
  qs[32:48] -> 160 + 16*i + m, qh[0:4] -> 240 + 4*i + m.
- Both carry a scale per 256-weight block. A BitNet weight has one scale per tensor, so every block whose codes
  are not all zero must carry the same d (blocks of zeros may carry 0); anything else is refused, never averaged.
- I2_S (bitnet.cpp, x86 layout): the tensor's n weights flattened row-major, in blocks of 128 -> 32 bytes; byte m
  of a block holds weights 32*g + m in bits 6-2g..7-2g (g = 0..3, group 0 in the top bits); then one fp32 scale
  (the first 4 of 32 trailing bytes), which multiplies.
- F32/F16/BF16 linears holding exactly {-a, 0, +a} (bitnet.cpp's and llama.cpp's f32/f16 intermediate files):
  codes from the sign, gamma = a.
"""

from __future__ import annotations

import numpy as np

from edgebit.errors import CheckpointError

TERNARY_TYPES = ("TQ1_0", "TQ2_0", "I2_S")
FLOAT_TYPES = ("F32", "F16", "BF16")
QK = 256  # TQ block


def _pow3_digits(b: np.ndarray, n: int) -> np.ndarray:
    """(..., B) bytes -> (..., n, B) base-3 digits, most significant first (ggml's TQ1_0 packing)."""
    pow3 = np.array([1, 3, 9, 27, 81][:n], dtype=np.uint8).reshape(n, 1)
    scaled = b[..., None, :] * pow3  # uint8 multiply wraps mod 256, as in ggml
    return ((scaled.astype(np.uint16) * 3) >> 8).astype(np.uint8)


def _tq2_codes(blocks: np.ndarray) -> np.ndarray:
    qs = blocks[:, :64].reshape(-1, 2, 1, 32)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    return ((qs >> shifts) & 3).reshape(-1, QK)


def _tq1_codes(blocks: np.ndarray) -> np.ndarray:
    n = blocks.shape[0]
    qs0 = _pow3_digits(blocks[:, 0:32], 5).reshape(n, 160)
    qs1 = _pow3_digits(blocks[:, 32:48], 5).reshape(n, 80)
    qh = _pow3_digits(blocks[:, 48:52], 4).reshape(n, 16)
    return np.concatenate([qs0, qs1, qh], axis=1)


TQ = {"TQ2_0": (66, _tq2_codes), "TQ1_0": (54, _tq1_codes)}


def tq_codes(raw: np.ndarray, n: int, k: int, type_name: str, where: str) -> tuple[np.ndarray, float]:
    """TQ1_0 / TQ2_0 bytes of an [N, K] tensor -> (codes [N, K], the one nonzero block scale)."""
    block_bytes, decode = TQ[type_name]
    blocks = raw.reshape(-1, block_bytes)
    d = blocks[:, block_bytes - 2:].copy().view(np.float16).reshape(-1).astype(np.float32)
    codes = decode(blocks)  # (blocks, 256)
    bad = codes == 3
    if bad.any():
        b, j = (int(v) for v in np.argwhere(bad)[0])
        raise CheckpointError(f"{where}: {type_name} code 3 at row {b * QK // k}, column {b * QK % k + j}; "
                              "ternary codes are 0, 1, 2")
    if not np.isfinite(d).all() or (d < 0).any():
        b = int(np.argwhere(~np.isfinite(d) | (d < 0))[0, 0])
        raise CheckpointError(f"{where}: {type_name} block {b} scale {float(d[b])} is negative or not finite")
    # llama.cpp computes d * (code - 1): a block whose scale is 0 is all zeros whatever its codes say.
    codes[d == 0] = 1
    live = (codes != 1).any(axis=1)
    scales = np.unique(d[live])
    if scales.size > 1:
        raise CheckpointError(
            f"{where}: {type_name} blocks carry different scales ({scales[0]:g}, {scales[1]:g}, ... {scales.size} "
            "values); a BitNet b1.58 weight has one scale per tensor, and edgebit's kernels take one")
    return codes.reshape(n, k), float(scales[0]) if scales.size else 1.0


I2S_BLOCK = 128


def i2s_codes(raw: np.ndarray, n: int, k: int, where: str) -> tuple[np.ndarray, float]:
    """I2_S bytes of an [N, K] tensor -> (codes [N, K], the tensor's fp32 scale)."""
    packed = raw[: n * k // 4].reshape(-1, 1, I2S_BLOCK // 4)
    shifts = np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)
    codes = ((packed >> shifts) & 3).reshape(n, k)
    bad = codes == 3
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise CheckpointError(f"{where}: I2_S code 3 at row {row}, column {col}; ternary codes are 0, 1, 2")
    scale = float(raw[n * k // 4: n * k // 4 + 4].copy().view(np.float32)[0])
    if not np.isfinite(scale) or scale <= 0:
        raise CheckpointError(f"{where}: I2_S scale {scale} (the fp32 after the packed weights) is not a positive "
                              "finite number")
    return codes, scale


def float_codes(values: np.ndarray, where: str, type_name: str) -> tuple[np.ndarray, float]:
    """A float [N, K] tensor holding exactly {-a, 0, +a} -> (codes, a)."""
    mags = np.abs(values[values != 0])
    if mags.size == 0:
        return np.ones(values.shape, dtype=np.uint8), 1.0
    a = mags.max()
    if not np.isfinite(a) or (mags != a).any():
        other = mags[mags != a][0] if np.isfinite(a) else a
        raise CheckpointError(f"{where}: {type_name} values are not ternary ({float(a):g} and {float(other):g} "
                              "both occur); edgebit reads ternary linears (TQ1_0, TQ2_0, I2_S, or floats in "
                              "{-a, 0, +a})")
    return (np.sign(values).astype(np.int8) + 1).astype(np.uint8), float(a)
