import pytest
import torch

from edgebit.errors import LayoutError
from edgebit.quant.packing import (
    LAYOUT_VERSION,
    codes_to_layout,
    hf_pack,
    hf_unpack_codes,
    pack_ternary,
    packed_row_bytes,
    padded_k,
    unpack_codes,
    unpack_ternary,
)
from edgebit.quant.ternary import absmean_ternarize, quantize_activations


def test_padded_sizes():
    assert LAYOUT_VERSION == 2
    assert [padded_k(k) for k in (1, 100, 127, 128, 129, 200, 540, 5460, 8640)] == [
        128, 128, 128, 128, 256, 256, 640, 5504, 8704]
    assert [packed_row_bytes(k) for k in (1, 128, 200, 8640)] == [32, 32, 64, 2176]


@pytest.mark.parametrize("n,k", [(1, 128), (3, 256), (64, 384), (7, 2560), (1, 1), (3, 100), (5, 129), (4, 200),
                                 (2, 540), (1, 5460), (1, 8640), (9, 383)])
def test_layout_round_trip(n, k):
    w_t = torch.randint(-1, 2, (n, k), dtype=torch.int8)
    packed = pack_ternary(w_t)
    assert packed.dtype == torch.uint8 and packed.shape == (n, padded_k(k) // 4)
    assert torch.equal(unpack_ternary(packed, k), w_t)
    assert torch.equal(unpack_codes(packed, k), (w_t + 1).to(torch.uint8))


@pytest.mark.parametrize("k", [384, 300])
def test_layout_matches_its_documentation(k):
    """Byte j of block b in row n holds k = 128*b + 32*i + j in bits 2i..2i+1, code = w + 1; the padding weights
    (k >= K, up to the next multiple of 128) hold code 1."""
    n = 5
    w_t = torch.randint(-1, 2, (n, k), dtype=torch.int8)
    packed = pack_ternary(w_t)
    for row in range(n):
        for col in range(padded_k(k)):
            b, rest = divmod(col, 128)
            i, j = divmod(rest, 32)
            code = (int(packed[row, 32 * b + j]) >> (2 * i)) & 3
            assert code == (int(w_t[row, col]) + 1 if col < k else 1)


def test_codes_to_layout_into_out_buffer_with_padding():
    codes = torch.randint(0, 3, (6, 200), dtype=torch.uint8)
    out = torch.full((6, 64), 0xFF, dtype=torch.uint8)  # stale bytes: every one must be overwritten
    assert codes_to_layout(codes, "w", out) is out
    assert torch.equal(out, pack_ternary(codes.to(torch.int8) - 1))
    assert torch.equal(unpack_codes(out, 200), codes)
    with pytest.raises(RuntimeError):
        codes_to_layout(codes, "w", torch.empty(6, 50, dtype=torch.uint8))  # a v1-sized buffer is too small


def test_hf_layout_round_trip_against_transformers():
    from transformers.integrations.bitnet import pack_weights, unpack_weights

    w_t = torch.randint(-1, 2, (64, 256), dtype=torch.int8)
    ours = hf_pack(w_t)
    assert torch.equal(ours, pack_weights(w_t.float()))
    assert torch.equal(unpack_weights(ours, dtype=torch.float32), w_t.float())
    assert torch.equal(hf_unpack_codes(ours).to(torch.int8) - 1, w_t)


def test_code_three_is_refused_with_position():
    codes = torch.ones(4, 128, dtype=torch.uint8)
    codes[2, 77] = 3
    with pytest.raises(LayoutError, match=r"q_proj.weight: packed code 3 at row 2, column 77"):
        codes_to_layout(codes, "q_proj.weight")


def test_empty_shapes_are_an_error():
    with pytest.raises(LayoutError, match=r"pack_ternary: shape \[4, 0\] cannot be packed"):
        pack_ternary(torch.zeros(4, 0, dtype=torch.int8))
    with pytest.raises(LayoutError, match=r"shape \[0, 128\] cannot be packed"):
        pack_ternary(torch.zeros(0, 128, dtype=torch.int8))
    with pytest.raises(LayoutError):
        unpack_codes(torch.zeros(4, 1, dtype=torch.uint8), 0)


@pytest.mark.parametrize("k,width", [(200, 50), (200, 32), (200, 96), (100, 25), (128, 64)])
def test_wrong_packed_width_names_both_numbers(k, width):
    """A v1-style [N, K/4] buffer for an odd K, or any other width, is refused naming what v2 expects."""
    with pytest.raises(LayoutError, match=rf"expected uint8 \[4, {packed_row_bytes(k)}\] for in_features {k}.*"
                                          rf"got torch.uint8\[4, {width}\]"):
        unpack_codes(torch.zeros(4, width, dtype=torch.uint8), k)


def test_absmean_ternarize_is_transformers_weightquant():
    from transformers.integrations.bitnet import WeightQuant

    w = torch.randn(96, 256) * 0.03
    w_t, gamma = absmean_ternarize(w)
    expected = WeightQuant.forward(None, w)  # ternary / scale, i.e. W_t * gamma up to one rounding
    assert torch.allclose(w_t.float() * gamma, expected, rtol=1e-6, atol=0)
    assert set(w_t.unique().tolist()) <= {-1, 0, 1}


def test_activation_quantization_is_per_token_absmax_half_to_even():
    x = torch.tensor([[0.5, -1.0, 0.25, 2.54], [0.0, 0.0, 0.0, 0.0], [1e-9, -3.0, 3.0, 1.5]])
    x_q, s = quantize_activations(x)
    assert s[0, 0] == torch.tensor(127.0) / torch.tensor(2.54)
    assert torch.equal(x_q[1], torch.zeros(4))  # all-zero row: scale from the 1e-5 clamp, no NaN
    assert x_q.abs().max() <= 127 and x_q[2].tolist() == [0.0, -127.0, 127.0, 64.0]  # 63.5 rounds to even
    assert torch.equal(x_q, x_q.round())


def test_activation_quantization_matches_transformers_bitlinear():
    from transformers.integrations.bitnet import BitLinear

    x = torch.randn(4, 7, 256) * 3
    hf_q, hf_s = BitLinear.activation_quant(None, x)
    x_q, s = quantize_activations(x)
    assert torch.allclose(s, hf_s, rtol=2e-7, atol=0)
    # 127/t and 127*(1/t) differ by an ulp at most; the quantized values agree except at exact .5 ties
    assert (x_q != hf_q.float()).float().mean() < 1e-3
