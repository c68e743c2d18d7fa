"""Malformed artifacts through the commands a user runs (verify, run, profile) and through the native runner
(bin/edgebit-runner of a bundle, as on a device whose copy was damaged after the push): a wrong layout version, a
manifest that is missing or not JSON, files changed after export (sha256), a missing, truncated or foreign op
library (an aarch64 build on x86), a truncated model. Every case: exit 2, one line naming the file and what to
do, no traceback. Cases that pass the manifest checks on purpose (re-hashed) reach the runtime's own loader."""

import json
import os
import shutil
import subprocess

import pytest

from edgebit.artifact import sha256_file

ONNX_CMDS = {
    "verify": lambda art: ("verify", art),
    "run": lambda art: ("run", art, "--prompt-ids", "1,2,3", "--max-new-tokens", "2"),
    "profile": lambda art: ("profile", art, "--device", "local", "--runs", "1", "--gen-len", "2", "--prompt-len", "4"),
}


@pytest.fixture(scope="module")
def onnx_artifact(hf_checkpoint, tmp_path_factory):
    from edgebit.exporters.onnx.export import export_onnx

    return export_onnx(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("bad-art") / "good", 64, "fp32",
                       "edgebit")


def edit_manifest(art, edit):
    manifest = json.loads((art / "manifest.json").read_text())
    edit(manifest)
    (art / "manifest.json").write_text(json.dumps(manifest))


def rehash(art, *names):
    """Record the current bytes of `names` in manifest.json: an artifact whose files and manifest agree but whose
    contents are bad (what a buggy exporter or a hand-edited artifact would give)."""
    edit_manifest(art, lambda m: m["files"].update({n: sha256_file(art / n) for n in names}))


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def aarch64_library(tmp_path):
    """A real aarch64 shared library (the cross compiler setup.sh installs)."""
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if cc is None:
        if os.environ.get("CI") == "true":
            pytest.fail("aarch64-linux-gnu-gcc missing: setup.sh installs g++-aarch64-linux-gnu under CI")
        pytest.skip("aarch64-linux-gnu-gcc not installed")
    src = tmp_path / "f.c"
    src.write_text("int RegisterCustomOps(void) { return 0; }\n")
    out = tmp_path / "libforeign.so"
    subprocess.run([cc, "-shared", "-fPIC", str(src), "-o", str(out)], check=True)
    return out


def _layout_version(art, tmp_path):
    edit_manifest(art, lambda m: m.update(layout_version=99))
    return ["manifest.json", "layout v99", "re-export"]


def _layout_v1(art, tmp_path):
    """An artifact exported before layout v2 (unpadded rows, K % 128 == 0) records layout_version 1."""
    edit_manifest(art, lambda m: m.update(layout_version=1))
    return ["manifest.json", "packed weight layout v1, but this", "reads layout v2 only", "re-export"]


def _kv_cache_unknown(art, tmp_path):
    edit_manifest(art, lambda m: m.update(kv_cache={"update": "ring", "dtype": "float32"}))
    return ["manifest.json", "'kv_cache' 'update' must be \"in-place\" or \"concat\""]


def _kv_cache_half_concat(art, tmp_path):
    edit_manifest(art, lambda m: m.update(kv_cache={"update": "concat", "dtype": "float16"}))
    return ["manifest.json", "'kv_cache' 'dtype' must be \"float32\", or \"float16\" or \"int8\" with \"update\": "
                             "\"in-place\""]


def _kv_cache_int8_row(art, tmp_path):
    """An int8 cache whose rows are laid out some other way (a later edgebit's, say): refused by name."""
    edit_manifest(art, lambda m: m.update(kv_cache={"update": "in-place", "dtype": "int8", "row": "int8-codes"}))
    return ["manifest.json", "'kv_cache' 'row' must be \"int8-codes+f32-scale\""]


def _manifest_not_json(art, tmp_path):
    (art / "manifest.json").write_text("{ not json")
    return ["manifest.json", "JSON"]


def _manifest_missing(art, tmp_path):
    (art / "manifest.json").unlink()
    return ["manifest.json", "edgebit export"]


def _model_changed(art, tmp_path):
    data = bytearray((art / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (art / "model.onnx").write_bytes(bytes(data))
    return ["model.onnx", "sha256", "re-export"]


def _model_truncated(art, tmp_path):
    truncate(art / "model.onnx")
    return ["model.onnx", "truncated", "re-export"]


def _model_truncated_rehashed(art, tmp_path):
    truncate(art / "model.onnx")
    rehash(art, "model.onnx")
    return ["model.onnx", "cannot load"]


def _library_missing(art, tmp_path):
    (art / "libedgebit_ort.so").unlink()
    return ["libedgebit_ort.so", "missing", "re-export"]


def _library_replaced(art, tmp_path):
    shutil.copy(aarch64_library(tmp_path), art / "libedgebit_ort.so")
    return ["libedgebit_ort.so", "sha256"]


def _library_foreign_rehashed(art, tmp_path):
    shutil.copy(aarch64_library(tmp_path), art / "libedgebit_ort.so")
    rehash(art, "libedgebit_ort.so")
    return ["libedgebit_ort.so", "built for aarch64", "x86_64"]


def _library_truncated_rehashed(art, tmp_path):
    truncate(art / "libedgebit_ort.so", 0.3)
    rehash(art, "libedgebit_ort.so")
    return ["libedgebit_ort.so", "truncated"]


def _library_not_elf_rehashed(art, tmp_path):
    (art / "libedgebit_ort.so").write_bytes(b"#!/bin/sh\necho not a library\n")
    rehash(art, "libedgebit_ort.so")
    return ["libedgebit_ort.so", "not a shared library"]


def _tokenizer_missing(art, tmp_path):
    (art / "tokenizer.json").unlink()
    return ["tokenizer.json", "missing"]


def _files_escape(art, tmp_path):
    edit_manifest(art, lambda m: m["files"].update({"../outside.bin": "0" * 64}))
    return ["manifest.json", "../outside.bin"]


CASES = {f.__name__.lstrip("_"): f for f in [
    _layout_version, _layout_v1, _kv_cache_unknown, _kv_cache_half_concat, _kv_cache_int8_row, _manifest_not_json, _manifest_missing,
    _model_changed, _model_truncated, _model_truncated_rehashed, _library_missing, _library_replaced,
    _library_foreign_rehashed, _library_truncated_rehashed, _library_not_elf_rehashed, _tokenizer_missing, _files_escape,
]}
# Profiling runs the device's own bundle (its libraries, not the artifact's), so cases that only the artifact's
# op library or model loader can see reach the native runner instead; they are covered there (test_device_faults).
PROFILE_SKIPS = {"model_truncated_rehashed", "library_foreign_rehashed", "library_truncated_rehashed",
                 "library_not_elf_rehashed"}


@pytest.mark.parametrize("case, command", [(case, command) for command in ONNX_CMDS for case in CASES
                                            if not (command == "profile" and case in PROFILE_SKIPS)])
def test_bad_artifact_is_one_clear_line(case, command, onnx_artifact, tmp_path, cli):
    art = shutil.copytree(onnx_artifact, tmp_path / "art")
    expected = CASES[case](art, tmp_path)
    result = cli(*ONNX_CMDS[command](art), timeout=600)
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


# ---- the native runner: the engine's own checks (runtime_ops/engine: manifest.cpp, artifact_check.cpp,
# elf_check.cpp), before ONNX Runtime or ExecuTorch sees a file -------------------------------------------------

@pytest.fixture(scope="module")
def runner_without_op_libraries(tmp_path_factory):
    """The host bundle's edgebit-runner with lib/ minus its own op libraries, so the engine loads the artifact's
    (as a runner installed without them does, e.g. on a device given the artifact alone): every case above then
    reaches the native checks, including the ELF inspection of the artifact's op library."""
    from edgebit.profile.bundle import build_bundle

    bundle = build_bundle("host").path
    copy = tmp_path_factory.mktemp("bundle") / "bundle"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("libedgebit_ort.so", "libedgebit_executorch.so"))
    return copy / "bin" / "edgebit-runner"


def run_native(runner, art, tmp_path, *extra):
    env = {**os.environ, "EDGEBIT_CACHE_DIR": str(tmp_path / "cache")}  # the verified-file stamps stay in tmp
    return subprocess.run([str(runner), str(art), "--prompt", "And God said", "--max-new-tokens", "2", *extra],
                          capture_output=True, text=True, timeout=300, env=env)


def assert_one_line(result, expected):
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebit-runner: error: "), result.stderr
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


def test_native_runner_runs_the_intact_artifact(onnx_artifact, runner_without_op_libraries, tmp_path):
    """The control: the same runner, artifact and check pass when nothing is wrong."""
    r = run_native(runner_without_op_libraries, onnx_artifact, tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    verify = json.loads(r.stdout)["verify"]
    assert verify["mode"] == "cached" and verify["hashed"] == verify["files"] == len(
        json.loads((onnx_artifact / "manifest.json").read_text())["files"])


@pytest.mark.parametrize("case", list(CASES))
def test_native_runner_refuses_bad_artifact_in_one_line(case, onnx_artifact, runner_without_op_libraries, tmp_path):
    art = shutil.copytree(onnx_artifact, tmp_path / "art")
    expected = CASES[case](art, tmp_path)
    assert_one_line(run_native(runner_without_op_libraries, art, tmp_path), expected)


def test_native_runner_refuses_another_artifact_format(onnx_artifact, runner_without_op_libraries, tmp_path):
    art = shutil.copytree(onnx_artifact, tmp_path / "art")
    edit_manifest(art, lambda m: m.update(format_version=2))
    assert_one_line(run_native(runner_without_op_libraries, art, tmp_path), ["manifest.json", "format v2", "v1"])


def test_engine_layout_version_is_the_python_one():
    """One number, two languages: the engine refuses what edgebit.quant.packing does not write."""
    import re
    from pathlib import Path

    from edgebit.quant.packing import LAYOUT_VERSION

    header = (Path(__file__).resolve().parents[2] / "runtime_ops" / "kernels" / "edgebit_kernels.h").read_text()
    assert int(re.search(r"#define EDGEBIT_LAYOUT_VERSION (\d+)", header).group(1)) == LAYOUT_VERSION


@pytest.fixture(scope="module")
def pte_artifact(hf_checkpoint, tmp_path_factory):
    from edgebit.exporters.executorch.export import export_executorch

    return export_executorch(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("bad-pte") / "good", 64,
                             "fp32", False)


def _pte_changed(art, tmp_path):
    model = art / json.loads((art / "manifest.json").read_text())["model_file"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return [model.name, "sha256", "re-export"]


def _pte_truncated_rehashed(art, tmp_path):
    model = art / json.loads((art / "manifest.json").read_text())["model_file"]
    truncate(model)
    rehash(art, model.name)
    return [model.name, "ExecuTorch cannot load"]


def _pte_library_foreign_rehashed(art, tmp_path):
    shutil.copy(aarch64_library(tmp_path), art / "libedgebit_executorch.so")
    rehash(art, "libedgebit_executorch.so")
    return ["libedgebit_executorch.so", "built for aarch64", "x86_64"]


PTE_CASES = {f.__name__.lstrip("_"): f for f in [_pte_changed, _pte_truncated_rehashed, _pte_library_foreign_rehashed]}


@pytest.mark.parametrize("case", list(PTE_CASES))
def test_native_runner_refuses_bad_pte_artifact_in_one_line(case, pte_artifact, runner_without_op_libraries,
                                                             tmp_path):
    art = shutil.copytree(pte_artifact, tmp_path / "art")
    expected = PTE_CASES[case](art, tmp_path)
    assert_one_line(run_native(runner_without_op_libraries, art, tmp_path), expected)
