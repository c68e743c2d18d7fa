"""Where the engine's memory goes (issue 22): the weights are mapped from the artifact's files, not copied into the
process (ONNX: model.onnx.data, which ONNX Runtime maps; .pte: program.pte through ExecuTorch's mmap loader), the
engine reports the split from /proc/self/smaps, and --max-memory / max_memory_mb refuse to open an artifact
estimated to need more, in one line naming the figure. Tiny models: the 2B4T figures are in
docs/performance.md, measured by `edgebit bench decode`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# A head blob of 4096 x 256 int8 = 1 MiB: big enough to be 64 KiB-aligned in model.onnx.data (builder.py).
DIMS = {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 512}
BENCH = ("--prompt-len", "8", "--gen-len", "4", "--runs", "1", "--warmup", "0", "--threads", "1")


@pytest.fixture(scope="module")
def artifacts(int8_artifacts):
    return int8_artifacts(DIMS, "memory")


def weight_files(art: Path) -> list[Path]:
    manifest = json.loads((art / "manifest.json").read_text())
    return [art / n for n in manifest["files"] if not n.endswith((".so", ".json"))]


def test_onnx_weights_live_in_the_external_data_file_aligned(artifacts):
    import onnx

    art = artifacts["onnx"]
    assert (art / "model.onnx.data").stat().st_size > (art / "model.onnx").stat().st_size
    model = onnx.load(str(art / "model.onnx"), load_external_data=False)
    external = {t.name: {e.key: e.value for e in t.external_data} for t in model.graph.initializer if t.external_data}
    assert "embed_tokens.int8" in external
    for name, info in external.items():
        if int(info["length"]) >= 1 << 20:
            assert int(info["offset"]) % (1 << 16) == 0, name


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_weights_are_mapped_from_the_file_not_copied(artifacts, runner, target):
    art = artifacts[target]
    r = runner(art, *BENCH)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    m = out["memory"]
    weights = sum(p.stat().st_size for p in weight_files(art))
    assert m["available"] and m["weights_file"] == weights
    # The weight files are mapped (a runtime that reads them into its own buffers maps none), and what the model
    # read of them is resident as the file's pages, not as anonymous copies. ONNX: every byte of model.onnx.data
    # (the engine maps it whole, weight_map.h, or ORT maps each tensor). .pte: all of it too: the int8 head is edgebit's QLinear, which reads the mapped rows in place
    # (nothing repacked; XNNPACK, which packed a head into its own buffer, now has only the attention products).
    need = m["need"]
    assert need["repacked"] == 0
    data = (art / "model.onnx.data").stat().st_size if target == "onnx" else 0.9 * weights
    assert m["weights_mapped_size"] >= data, m
    assert 0 < m["weights_mapped"] <= m["weights_mapped_size"], m
    assert m["rss"] >= m["weights_mapped"] + m["anonymous"] and m["peak_rss"] >= m["rss"] > 0
    # The KV cache as the engine counts it: ONNX, the positions cached; a .pte, its planned buffers (context 64).
    cfg = json.loads((art / "manifest.json").read_text())["config"]
    per_token = 2 * cfg["num_layers"] * cfg["num_kv_heads"] * cfg["head_dim"] * 4
    assert m["kv_cache"] == per_token * (8 + 4 - 1 if target == "onnx" else 64)
    assert need["total"] == sum(need[k] for k in ("weights", "repacked", "kv_cache", "activations", "runtime"))
    assert need["weights"] == weights


def _probe(host_bundle, art, max_memory_mb):
    probe = Path(__file__).with_name("memory_probe.py")
    r = subprocess.run([sys.executable, str(probe), str(host_bundle / "lib" / "libedgebit_engine.so"), str(art),
                        str(max_memory_mb)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_max_memory_refuses_to_open_naming_the_figure(artifacts, runner, host_bundle, target):
    art = artifacts[target]
    ok = _probe(host_bundle, art, 0)
    assert ok["opened"] and ok["error"] == ""
    need_mb = ok["memory"]["need"]["total"] / 1e6
    # Just under the estimate: refused, by the C API and by the runner, in one line with the figure it would need.
    below = int(need_mb) - 1
    refused = _probe(host_bundle, art, below)
    assert not refused["opened"]
    assert f"needs about {need_mb:.0f} MB" in refused["error"] and f"limit of {below} MB" in refused["error"]
    r = runner(art, *BENCH, "--max-memory", str(below))
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and f"needs about {need_mb:.0f} MB" in r.stderr, r.stderr
    assert "KV cache" in r.stderr and "max_seq_len 64" in r.stderr
    # At the estimate: opens and runs.
    assert _probe(host_bundle, art, int(need_mb) + 1)["opened"]
    r = runner(art, *BENCH, "--max-memory", str(int(need_mb) + 1))
    assert r.returncode == 0, r.stderr
    r = runner(art, *BENCH, "--max-memory", "0")
    assert r.returncode == 1 and "--max-memory" in r.stderr  # a usage error, not "no limit"


def test_profile_reports_the_split(artifacts, cli, tmp_path):
    out = tmp_path / "p.json"
    r = cli("profile", artifacts["onnx"], "--prompt-len", "4", "--gen-len", "4", "--runs", "1", "--warmup", "0",
            "--threads", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "weights mapped" in r.stdout and "anonymous" in r.stdout and "KV cache" in r.stdout
    m = json.loads(out.read_text())["memory"]
    assert m["weights_mapped_size"] >= (artifacts["onnx"] / "model.onnx.data").stat().st_size > 0
    assert m["weights_file"] > m["weights_mapped_size"] - (64 << 10)
    r = cli("profile", artifacts["onnx"], "--max-memory", "1", "--runs", "1", "--warmup", "0")
    assert r.returncode != 0 and "needs about" in r.stderr and "Traceback" not in r.stderr
