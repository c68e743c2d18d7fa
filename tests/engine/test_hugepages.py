"""The engine maps an edgebit artifact's weight file itself, on 2 MB pages where the kernel has transparent huge
pages (runtime_ops/engine/weight_map.h), and hands the runtimes pointers into it: ONNX Runtime one OrtValue per
external initializer (read from model.onnx by the engine's own protobuf reader, onnx_external.cpp), ExecuTorch a
buffer loader over program.pte. EDGEBIT_HUGEPAGES=0 leaves the mapping to the runtimes, as before; both must compute
the same tokens. A file the page cache holds in small folios is dropped and read again so that it can be mapped on
2 MB pages."""

import json
import os
import shutil
from pathlib import Path

import pytest

from edgebit.bench.timing import transparent_hugepages

# An int8 head of 16384 x 256 (4 MiB): a weight file with whole 2 MB pieces.
DIMS = {"vocab_size": 16384, "hidden_size": 256, "intermediate_size": 512}
BENCH = ("--prompt-len", "8", "--gen-len", "8", "--runs", "1", "--warmup", "0", "--threads", "1", "--seed", "0",
         "--verify", "off")  # no sha256 pass: it would read the file into the cache before the runtime maps it


@pytest.fixture(scope="module")
def artifacts(int8_artifacts):
    return int8_artifacts(DIMS, "hugepages")


def weight_file(art: Path) -> Path:
    return art / ("model.onnx.data" if (art / "model.onnx.data").exists() else "program.pte")


def run(runner, art, hugepages: bool):
    env_before = os.environ.get("EDGEBIT_HUGEPAGES")
    os.environ["EDGEBIT_HUGEPAGES"] = "1" if hugepages else "0"
    try:
        r = runner(art, *BENCH)
    finally:
        if env_before is None:
            del os.environ["EDGEBIT_HUGEPAGES"]
        else:
            os.environ["EDGEBIT_HUGEPAGES"] = env_before
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def no_file_thp_marker(path: Path) -> Path:
    """Where the engine records that this kernel gives this file's filesystem no 2 MB folios (weight_map.cpp)."""
    env = os.environ
    root = (Path(env["EDGEBIT_CACHE_DIR"]) if env.get("EDGEBIT_CACHE_DIR") else
            Path(env["XDG_CACHE_HOME"]) / "edgebit" if env.get("XDG_CACHE_HOME") else Path.home() / ".cache/edgebit")
    u = os.uname()
    return root / "hugepages" / f"no-file-thp-{os.stat(path).st_dev:x}-{u.release}-{u.machine}".replace("/", "_")


def drop_cached(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)  # only clean pages can be dropped, and the export may not be written back yet
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_engine_mapping_computes_what_the_runtime_mapping_does(artifacts, runner, target):
    art = artifacts[target]
    assert weight_file(art).stat().st_size > 4 << 20
    # First the runtime's own mapping of a file just dropped from the cache: ONNX Runtime faults it in 4 KB pieces,
    # which leaves it cached in small folios; the engine's mapping must notice and read it again in 2 MB ones.
    drop_cached(weight_file(art))
    own = run(runner, art, hugepages=False)
    engine = run(runner, art, hugepages=True)
    assert engine["generated_ids"] == own["generated_ids"] and len(own["generated_ids"]) == 8
    m, m0 = engine["memory"], own["memory"]
    assert m["weights_mapped_size"] >= weight_file(art).stat().st_size and m["weights_mapped"] > 0
    if not transparent_hugepages():
        assert m["weights_huge"] == 0
    elif no_file_thp_marker(weight_file(art)).exists():
        # This kernel gave the filesystem no 2 MB folios after a re-read; the engine wrote that down so later opens
        # do not re-read for nothing (weight_map.cpp). Not the case on the CI machines (ext4, Linux 6.18).
        pass
    else:
        # Every whole 2 MB piece the model read sits on a 2 MB page.
        assert m["weights_huge"] >= (m["weights_file"] // (2 << 20) - 1) * (2 << 20), m
    # 2 MB pages cost at most a page's worth of partly read bytes at each end of the file.
    assert m["peak_rss"] <= m0["peak_rss"] + (4 << 20), (m["peak_rss"], m0["peak_rss"])


def test_standard_artifact_keeps_the_runtime_mapping(hf_checkpoint, runner, tmp_path):
    """A standard artifact (MatMulNBits copies its weights at load) is left to ONNX Runtime: 2 MB pages would only
    make each gathered embedding row cost 2 MB of resident memory."""
    from edgebit.exporters.onnx.export import export_onnx

    art = export_onnx(hf_checkpoint("bitnet", "packed", dims=DIMS), tmp_path / "std", 64, "int8", "standard")
    own, engine = run(runner, art, hugepages=False), run(runner, art, hugepages=True)
    assert engine["generated_ids"] == own["generated_ids"]
    assert engine["memory"]["weights_mapped_size"] == own["memory"]["weights_mapped_size"]


def test_broken_external_data_is_refused_in_one_line(artifacts, runner, tmp_path):
    """The engine reads model.onnx's initializers itself now: a data file shorter than they say, and a model that is
    not a protobuf, are refused naming the file (and the tensor), not mapped past the end."""
    art = tmp_path / "short"
    shutil.copytree(artifacts["onnx"], art)
    data = art / "model.onnx.data"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    r = runner(art, *BENCH)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "model.onnx" in r.stderr and "initializer '" in r.stderr and "bytes" in r.stderr, r.stderr

    bad = tmp_path / "bad"
    shutil.copytree(artifacts["onnx"], bad)
    model = bad / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    r = runner(bad, *BENCH)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "model.onnx" in r.stderr, r.stderr
