"""The compiled kernels (every variant this CPU runs) are bit-exact to the PyTorch reference."""

import pytest
import torch

from edgebit.model.reference import ternary_linear as reference_linear
from edgebit.model.weights import TernaryWeight
from edgebit.ops import native
from edgebit.quant.packing import pack_ternary, unpack_ternary
from edgebit.quant.ternary import quantize_activations

VARIANTS = native.runnable_variants()


@pytest.fixture(params=VARIANTS)
def variant(request):
    native.force_variant(request.param)
    yield request.param
    native.force_variant(None)


def random_weight(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    return TernaryWeight(pack_ternary(w_t), torch.tensor(0.0137), n, k)


def test_host_runs_more_than_scalar():
    assert VARIANTS[0] == "scalar" and len(VARIANTS) >= 2, VARIANTS


@pytest.mark.parametrize("m,n,k,threads", [(1, 64, 128, 1), (1, 7, 2560, 2), (5, 130, 384, 1), (17, 64, 6912, 2),
                                           (1, 67, 200, 1), (5, 13, 540, 2), (3, 9, 1, 1), (33, 70, 8640, 2)])
def test_fused_linear_bit_exact(variant, m, n, k, threads):
    w = random_weight(n, k, seed=m * n + k)
    x = torch.randn(m, k) * 4
    x[0, min(3, k - 1)] = 1e4  # a dominant value: most others quantize to 0
    if m > 2:
        x[2] = 0  # all-zero row: the 1e-5 clamp, no NaN
    expected = reference_linear(x, w)
    got = native.ternary_linear(x, w, threads=threads)
    assert torch.equal(got, expected), (got - expected).abs().max()


@pytest.mark.parametrize("m,threads", [(1, 1), (5, 2), (70, 2)])
def test_per_channel_linear_bit_exact(variant, m, threads):
    """q/k/v-style: three weights with their own gammas concatenated along N, one call, one quantization."""
    k, parts = 384, [(64, 0.011), (32, 0.7), (45, 3.25)]
    weights = [random_weight(n, k, seed=i + 10) for i, (n, _) in enumerate(parts)]
    gammas = [torch.full((n,), g) for n, g in parts]
    gammas[0] = gammas[0] * torch.linspace(0.5, 2.0, parts[0][0])  # distinct per channel too
    packed = torch.cat([w.packed for w in weights])
    gamma = torch.cat(gammas)
    x = torch.randn(m, k) * 3
    x[0, 7] = -500.0
    expected = reference_linear(x, TernaryWeight(packed, gamma, packed.shape[0], k))
    got = native.ternary_linear_channels(x, packed, gamma, threads=threads)
    assert torch.equal(got, expected), (got - expected).abs().max()
    uniform = native.ternary_linear_channels(x, weights[1].packed, torch.full((32,), 0.0137), threads=threads)
    assert torch.equal(uniform, native.ternary_linear(x, weights[1], threads=threads))


def test_quantize_rows_bit_exact(variant):
    x = torch.randn(9, 384) * 10
    x[1] = 0
    x[2, :4] = torch.tensor([0.5, 1.5, 2.5, -0.5]) * (1 / 127)  # ties after scaling
    x_q, s = native.quantize_rows(x)
    ref_q, ref_s = quantize_activations(x)
    assert torch.equal(s, ref_s[:, 0]) and torch.equal(x_q.float(), ref_q)


@pytest.mark.parametrize("k", [2560, 100, 5460])
def test_int32_sums_exact_with_extreme_activations(variant, k):
    n = 33
    w = random_weight(n, k, seed=3)
    x_q = torch.full((2, k), -128, dtype=torch.int8)
    x_q[1, ::2] = 127
    acc = native.ternary_gemm_i32(x_q, w.packed, n, k, threads=2)
    expected = x_q.long() @ unpack_ternary(w.packed, k).long().T
    assert torch.equal(acc.long(), expected)


def test_wrong_packed_width_is_a_clear_error():
    """Layout v2 takes any K, with rows of ceil(K/128)*32 bytes: a buffer of another width is refused before the
    kernels could read past it."""
    w = random_weight(4, 128, seed=0)
    bad = TernaryWeight(w.packed, w.gamma, 4, 200)
    with pytest.raises(native.KernelError, match=r"K=200 needs packed \(4, 64\).*got \(4, 32\)"):
        native.ternary_linear(torch.randn(1, 200), bad)
    with pytest.raises(native.KernelError, match=r"K=200 needs packed \(4, 64\)"):
        native.ternary_linear_channels(torch.randn(1, 200), w.packed, torch.ones(4))
    with pytest.raises(native.KernelError, match=r"K=200 needs packed \(4, 64\)"):
        native.ternary_gemm_i32(torch.zeros(1, 200, dtype=torch.int8), w.packed, 4, 200)


def test_forcing_an_unknown_variant_is_an_error():
    with pytest.raises(native.KernelError):
        native.force_variant("sse9000")
    assert native.variant() in VARIANTS


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_row_is_all_nan_everywhere(variant, bad):
    """The one defined behaviour for NaN/Inf activations (docs/reliability.md): that row's outputs are all NaN,
    in every variant, the per-channel entry and the reference model; the other rows are untouched."""
    k, n = 256, 70
    w = random_weight(n, k, seed=3)
    x = torch.randn(4, k)
    x[1, 5] = bad  # in the vector body
    x[3, k - 1] = bad  # in the last element
    expected = reference_linear(x, w)
    got = native.ternary_linear(x, w, threads=2)
    for row in (1, 3):
        assert torch.isnan(expected[row]).all() and torch.isnan(got[row]).all()
    for row in (0, 2):
        assert torch.equal(got[row], expected[row]) and torch.isfinite(got[row]).all()
    channels = native.ternary_linear_channels(x, w.packed, torch.full((n,), float(w.gamma)), threads=1)
    assert torch.equal(channels.isnan(), expected.isnan())


@pytest.mark.parametrize("m,k", [(1, 2560), (7, 384), (3, 1), (5, 6912), (2, 200)])
def test_rms_norm_rows_bit_exact_to_the_reference(m, k):
    """edgebit_rms_norm_rows (one C function for every variant) gives the reference's rms_norm floats: its mean of
    squares is summed in fp64 in another order than torch's, rounded once to fp32 (the same float). Rows spanning
    magnitudes, a zero row (1 / sqrt(eps)), and a non-finite row (NaN throughout, as the reference)."""
    from edgebit.model.reference import rms_norm

    g = torch.Generator().manual_seed(m * 7 + k)
    x = torch.randn(m, k, generator=g) * torch.logspace(-3, 3, m).unsqueeze(1)
    weight = torch.rand(k, generator=g) * 2 - 0.5
    if m > 2:
        x[1] = 0
        x[2, k // 2] = float("inf")
    for eps in (1e-5, 1e-6, 0.0 if m == 1 else 1e-5):
        expected = rms_norm(x, weight, eps)
        got = native.rms_norm_rows(x, weight, eps)
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.nan_to_num(), expected.nan_to_num()), (got - expected).abs().max()


@pytest.mark.parametrize("m,n,k,threads", [(1, 96, 2560, 1), (5, 70, 384, 2), (33, 40, 200, 2)])
def test_linear_with_fused_rms_norm_bit_exact(variant, m, n, k, threads):
    """BitLinear's norm_weight input (edgebit_ternary_linear_f32_rmsnorm) is the reference's rms_norm then its
    ternary_linear, bit for bit, in every variant: the activation quantization sees the same floats."""
    from edgebit.model.reference import rms_norm

    w = random_weight(n, k, seed=m + n + k)
    gamma = torch.linspace(0.01, 0.2, n)
    x = torch.randn(m, k) * 5
    weight = torch.rand(k) + 0.5
    expected = reference_linear(rms_norm(x, weight, 1e-5), TernaryWeight(w.packed, gamma, n, k))
    got = native.ternary_linear_channels(x, w.packed, gamma, threads=threads, norm=(weight, 1e-5))
    assert torch.equal(got, expected), (got - expected).abs().max()
    with pytest.raises(native.KernelError, match=r"norm weight must be \(%d,\)" % k):
        native.ternary_linear_channels(x, w.packed, gamma, norm=(weight[:-1], 1e-5))
