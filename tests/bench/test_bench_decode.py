"""`edgebit bench decode` end to end on a tiny generated checkpoint (the 2B4T default is the same code path with
bigger tensors): every artifact kind exported, timed by the native runner, ratios against the standard-ops
artifact; a rerun takes the exports from the cache. Figures are only checked for consistency, never for speed."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

QUICK = ("--preset", "tiny", "--runs", "1", "--gen-len", "4", "--threads", "1")
FAST = (*QUICK, "--context", "8")


@pytest.fixture(scope="module")
def first_run(cli, tmp_path_factory):
    cache = tmp_path_factory.mktemp("bench-cache")
    r = cli("bench", "decode", *FAST, "--json", "--cache-dir", cache, timeout=900)
    assert r.returncode == 0, r.stderr
    return cache, json.loads(r.stdout)


def test_rows_cover_every_artifact_head_and_ratio(first_run):
    _, rows = first_run
    assert {(r["artifact"], r["head"], r["threads"]) for r in rows} == {
        (a, h, 1) for a in ("onnx", "onnx-standard", "pte", "pte-torchao") for h in ("int8", "fp32")}
    for r in rows:
        assert r["decode_tokens_per_s"] > 0 and r["prefill_tokens_per_s"] > 0 and r["stream_read_gbps"] > 0
        assert r["roofline_tokens_per_s"] == pytest.approx(r["stream_read_gbps"] * 1e9 / r["bytes_per_token"])
        assert r["roofline_fraction"] == pytest.approx(r["decode_tokens_per_s"] / r["roofline_tokens_per_s"])
        assert r["bytes_per_token"] == r["weight_bytes_per_token"] + r["kv_bytes_per_token"]
        assert r["export_seconds"] > 0 and r["rounds"] == 1  # a fresh cache: everything was exported in this run
        # Memory next to the model's bytes: the runner's smaps split, and the issue-22 target it is held to.
        assert r["memory"]["available"] and r["model_bytes"] == r["memory"]["weights_file"] > 0
        assert r["memory_target_bytes"] == int(1.15 * (r["model_bytes"] + r["kv_cache_bytes_at_context"] + 100e6))
        assert r["peak_over_target"] == pytest.approx(r["peak_rss_bytes"] / r["memory_target_bytes"])
        assert r["load_ms"] > 0
        assert r["tokens_per_gbps"] == pytest.approx(r["decode_tokens_per_s"] / r["stream_read_gbps"])  # 1 thread
    by = {(r["artifact"], r["head"]): r for r in rows}
    for head in ("int8", "fp32"):
        base = by["onnx-standard", head]
        assert base["speedup_vs_standard_ops"] == pytest.approx(1.0)
        ours = by["onnx", head]
        assert ours["speedup_vs_standard_ops"] == pytest.approx(ours["decode_tokens_per_s"] / base["decode_tokens_per_s"])
        # Same ternary weights in both ONNX forms; MatMulNBits adds one fp32 scale per 128 weights.
        assert ours["weight_bytes_per_token"] < base["weight_bytes_per_token"]
    assert by["onnx", "fp32"]["weight_bytes_per_token"] > by["onnx", "int8"]["weight_bytes_per_token"]
    # ExecuTorch's stock low-bit path stores the ternary weights at 4 bits (+ a scale per 32): twice ours.
    assert by["pte-torchao", "int8"]["weight_bytes_per_token"] > by["pte", "int8"]["weight_bytes_per_token"]
    assert json.loads((Path(by["pte-torchao", "int8"]["artifact_dir"]) / "manifest.json").read_text())["ops"] \
        == "torchao-8da4w"


def test_rerun_takes_exports_from_the_cache_and_prints_the_table(first_run):
    cache, _ = first_run
    manifests = {p: p.stat().st_mtime_ns for p in cache.glob("artifacts/*/manifest.json")}
    assert len(manifests) == 8
    # Piped with no COLUMNS (as `edgebit bench decode > file` runs), the table is printed whole, not cut to 80 columns
    # of ellipses.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "edgebit", "bench", "decode", *FAST, "--heads", "int8", "--cache-dir",
                        str(cache)], capture_output=True, text=True, timeout=600, env=env, cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert "of roofline" in r.stdout and "onnx-standard" in r.stdout and "pte" in r.stdout
    assert "\u2026" not in r.stdout
    assert {p: p.stat().st_mtime_ns for p in cache.glob("artifacts/*/manifest.json")} == manifests


def test_q4_head_rows_against_the_standard_int8_head(first_run, cli):
    """--heads q4 exports only edgebit's artifacts with it (the stock ones cannot compute it) and compares them with
    the standard artifact's int8 head, which comes from the cache."""
    cache, _ = first_run
    r = cli("bench", "decode", *FAST, "--heads", "q4,int8", "--artifacts", "onnx,onnx-standard", "--json",
            "--cache-dir", cache, timeout=600)
    assert r.returncode == 0, r.stderr
    by = {(row["artifact"], row["head"]): row for row in json.loads(r.stdout)}
    assert set(by) == {("onnx", "q4"), ("onnx", "int8"), ("onnx-standard", "int8")}
    q4, base = by["onnx", "q4"], by["onnx-standard", "int8"]
    assert q4["standard_head"] == "int8"
    assert q4["speedup_vs_standard_ops"] == pytest.approx(q4["decode_tokens_per_s"] / base["decode_tokens_per_s"])
    assert q4["weight_bytes_per_token"] < by["onnx", "int8"]["weight_bytes_per_token"]
    assert json.loads((Path(q4["artifact_dir"]) / "manifest.json").read_text())["head"] == "q4"
    r = cli("bench", "decode", *FAST, "--artifacts", "onnx,tflite", "--cache-dir", cache)
    assert r.returncode == 2 and "tflite" in r.stderr and "Traceback" not in r.stderr


def test_contexts_each_get_their_rows_exports_and_ratios(first_run, cli):
    """--context 8,100: the tiny model prefilled with 8 and with 100 tokens; the longer context gets its own exports
    (a sequence limit that fits it: 8 + 4 -> 64, 100 + 4 -> 128), its rows its own standard-ops baseline and a KV cache
    that many positions longer; context 8 comes from the cache."""
    cache, _ = first_run
    r = cli("bench", "decode", *QUICK, "--context", "8,100", "--heads", "int8", "--artifacts", "onnx,onnx-standard",
            "--json", "--cache-dir", cache, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    by = {(row["artifact"], row["prompt_tokens"]): row for row in rows}
    assert set(by) == {(a, c) for a in ("onnx", "onnx-standard") for c in (8, 100)}
    for c in (8, 100):
        ours, base = by["onnx", c], by["onnx-standard", c]
        assert ours["speedup_vs_standard_ops"] == pytest.approx(ours["decode_tokens_per_s"] / base["decode_tokens_per_s"])
        assert ours["prefill_speedup_vs_standard_ops"] == pytest.approx(
            ours["prefill_tokens_per_s"] / base["prefill_tokens_per_s"])
    assert by["onnx", 100]["kv_bytes_per_token"] > by["onnx", 8]["kv_bytes_per_token"]
    assert by["onnx", 8]["export_seconds"] is None and by["onnx", 100]["export_seconds"] > 0
    seq = {c: json.loads((Path(by["onnx", c]["artifact_dir"]) / "manifest.json").read_text())["max_seq_len"]
           for c in (8, 100)}
    assert seq == {8: 64, 100: 128}
    for bad in ("0,8", "8,8", "eight"):
        r = cli("bench", "decode", *QUICK, "--context", bad, "--cache-dir", cache)
        assert r.returncode == 2 and "--context" in r.stderr and "Traceback" not in r.stderr


def test_bytes_per_token_of_the_2b4t_shape():
    from pathlib import Path

    from edgebit.bench.decode import bytes_per_token
    from edgebit.model.config import normalize_config
    from edgebit.model.synthetic import PRESETS, config_json

    cfg = normalize_config(config_json(PRESETS["2b4t"], "bitnet", "packed", "bfloat16"), Path("config.json"))
    b = bytes_per_token(cfg, "onnx", "int8", context=160)
    per_layer = 2560 * (2560 + 2 * 640) + 2560 * 2560 + 3 * 2560 * 6912  # ternary weights (N * K)
    channels = (2560 + 2 * 640) + 2560 + 2 * 6912 + 2560  # one fp32 gamma per output channel
    assert b["ternary"] == 30 * (per_layer // 4 + 4 * channels)  # ~0.52 GB at 2 bits a weight
    assert b["head"] == 128256 * (2560 + 4)  # edgebit's QLinear: int8 rows, one fp32 scale a row
    assert bytes_per_token(cfg, "onnx-standard", "int8", 160)["head"] == 128256 * 2560 + 4 * 128256 * 2560 // 128
    assert bytes_per_token(cfg, "pte", "q4", 160)["head"] == 128256 * (2560 // 2 + 2560 // 32 + 4)  # ~4.26 bits
    assert b["kv_cache"] == 2 * 30 * 5 * 128 * 2 * 160  # edgebit's default fp16 cache
    full = bytes_per_token(cfg, "onnx-kv32", "int8", 160)  # the fp32 cache: twice the bytes, the same weights
    assert full["kv_cache"] == 2 * b["kv_cache"] and full["head"] == b["head"]
    assert bytes_per_token(cfg, "onnx-standard", "int8", 160)["kv_cache"] == 2 * b["kv_cache"]
    assert bytes_per_token(cfg, "onnx", "fp32", 160)["head"] == 4 * 128256 * 2560


def test_q4_alone_still_times_the_standard_yardstick():
    """--heads q4 with onnx-standard chosen times the standard artifact's int8 head (it has no q4): before, the stock
    artifact was dropped without a word and every ratio came out empty."""
    from edgebit.bench.decode import Settings, selected

    chosen = [(name, head) for name, _, _, head in
              selected(Settings(heads=("q4",), artifacts=("onnx", "onnx-kv32", "onnx-standard", "pte-torchao")))]
    assert chosen == [("onnx", "q4"), ("onnx-kv32", "q4"), ("onnx-standard", "int8"), ("pte-torchao", "int8")]
    both = selected(Settings(heads=("q4", "int8"), artifacts=("onnx", "onnx-standard")))
    assert [(name, head) for name, _, _, head in both] == [("onnx", "q4"), ("onnx-standard", "int8"), ("onnx", "int8")]


def test_bad_options_are_one_line_errors(cli, tmp_path):
    r = cli("bench", "decode", "--preset", "huge", "--cache-dir", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "huge" in r.stderr
    r = cli("bench", "decode", tmp_path / "nowhere", "--cache-dir", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nowhere" in r.stderr


def test_an_export_failing_in_its_child_process_is_one_error_naming_it(tmp_path):
    """Exports run in a spawned child (their peak memory returns to the system); its one-line error comes back."""
    from edgebit.bench.isolated_export import export_in_child
    from edgebit.errors import EdgebitError

    steps = []
    with pytest.raises(EdgebitError) as info:
        export_in_child("onnx", tmp_path / "no-checkpoint", tmp_path / "out", steps.append, max_seq_len=64,
                        head="fp32", ops="edgebit")
    message = str(info.value)
    assert "\n" not in message and "no-checkpoint" in message and str(tmp_path / "out") in message
    assert not (tmp_path / "out").exists()


def test_a_cached_artifact_gets_the_current_op_library_instead_of_a_re_export(first_run):
    """The cache key leaves the op library out (the model file does not depend on its build): a cached artifact
    built with an older library gets this installation's copied in, with its hash in the manifest."""
    from edgebit.artifact import read_manifest, sha256_file
    from edgebit.bench.decode import refresh_op_library
    from edgebit.ops import ort_library

    cache, rows = first_run
    art = Path(next(r["artifact_dir"] for r in rows if r["artifact"] == "onnx"))
    manifest = json.loads((art / "manifest.json").read_text())
    lib = art / manifest["op_library"]
    lib.write_bytes(lib.read_bytes() + b"an older build")  # as if exported before the kernels were rebuilt
    manifest["files"][lib.name] = sha256_file(lib)
    (art / "manifest.json").write_text(json.dumps(manifest))
    assert refresh_op_library(art) is True
    assert lib.read_bytes() == ort_library.library_path().read_bytes()
    read_manifest(art)  # every hash agrees again
    assert refresh_op_library(art) is False
    assert not [p for p in art.iterdir() if p.name.startswith(".")]  # no temp files left
