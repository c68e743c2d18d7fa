"""`edgebit bench kernels`' row from cache (edgebit/bench/kernels.py): the decode sweep's M=1 calls on one layer's
weights, whose GB/s next to the sweep's tells compute-bound from memory-bound decode (docs/performance.md, twelfth
run). The full command takes minutes (every shape against four baselines); this times the one row."""

import pytest


@pytest.mark.parametrize("variant", ["scalar", "auto"])
def test_the_cache_row_times_one_layer_thirty_times(variant):
    from edgebit.bench import kernels as kb
    from edgebit.ops import native

    native.force_variant(variant)
    try:
        row = kb.bench_from_cache(bandwidth_gbps=20.0)
        # One 2B4T layer's packed bytes (K padded to 128 weights, 4 weights a byte), 30 times.
        layer_bytes = sum(n * (-(-k // 128) * 128) // 4 for n, k in kb.LAYER)
        assert layer_bytes == 17_367_040
        assert row.shape == "2b4t_layer_from_cache" and row.m == 1 and row.threads == 1
        assert row.variant == native.variant() and (variant == "auto" or row.variant == "scalar")
        assert row.seconds > 0 and row.weight_gbps * 1e9 * row.seconds == pytest.approx(30 * layer_bytes)
        assert row.bandwidth_fraction == pytest.approx(row.weight_gbps / 20.0)
        assert row.speedup_vs == {}  # no baselines: compared with the sweep's row, not with other libraries
    finally:
        native.force_variant("auto")
