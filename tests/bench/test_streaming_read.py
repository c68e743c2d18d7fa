"""The bandwidth yardstick every bench ratio is taken against reads a buffer on 2 MB pages where the kernel has
transparent huge pages, as the runner's weights are now mapped (edgebit/bench/timing.py): a 4 KB-page read streams
slower on these VMs and would flatter the ratios."""

from pathlib import Path

from edgebit.bench.timing import HUGE_PAGE, _read_buffer, streaming_read_gbps, transparent_hugepages


def anon_huge_bytes() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1]) * 1024
    return 0


def test_read_buffer_is_aligned_filled_and_on_huge_pages():
    before = anon_huge_bytes()
    buf, region = _read_buffer(16 * HUGE_PAGE)
    try:
        assert buf.numel() == 16 * HUGE_PAGE and buf.data_ptr() % HUGE_PAGE == 0
        assert int(buf.min()) == 1 == int(buf.max())
        if transparent_hugepages():
            assert anon_huge_bytes() - before >= 8 * HUGE_PAGE
    finally:
        del buf
        region.close()


def test_streaming_read_reports_a_bandwidth():
    gbps = streaming_read_gbps(nbytes=64 * HUGE_PAGE, threads=1)
    assert 0.1 < gbps < 10_000
