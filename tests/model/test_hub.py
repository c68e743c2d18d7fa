"""Hugging Face Hub ids as MODEL, run as users run the CLI. Nothing here touches the network: the offline tests
read a Hub cache laid out here exactly as huggingface_hub writes it (blobs/, snapshots/<commit>/ links, refs/),
the online tests talk to a small local server that answers the Hub's API the way the Hub does (HF_ENDPOINT)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = "edgebit-test/tiny-bitnet"
PICKLE_REPO = "edgebit-test/pickle-only"
COMMIT_MAIN = "a" * 40
COMMIT_V2 = "b" * 40
COMMIT_PICKLE = "c" * 40


def add_snapshot(cache: Path, repo_id: str, commit: str, files: dict[str, bytes], refs: tuple[str, ...]) -> Path:
    """One revision of REPO_ID in a huggingface_hub cache: content-addressed blobs, the snapshot's files as
    relative links into blobs/, and refs/<name> holding the commit for each branch or tag name in REFS."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / digest).write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", digest))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
    return snapshot


def read_dir(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture
def hub_cache(tmp_path, hf_checkpoint):
    """A cache with REPO at main (packed weights) and v2 (master weights), and a pickle-only repo."""
    cache = tmp_path / "hf-cache"
    add_snapshot(cache, REPO, COMMIT_MAIN, read_dir(hf_checkpoint("bitnet", "packed")), ("main",))
    add_snapshot(cache, REPO, COMMIT_V2, read_dir(hf_checkpoint("bitnet", "master")), ("v2",))
    config = (hf_checkpoint("bitnet", "packed") / "config.json").read_bytes()
    add_snapshot(cache, PICKLE_REPO, COMMIT_PICKLE, {"config.json": config, "pytorch_model.bin": b"\x80\x04pickle"},
                 ("main",))
    return cache


@pytest.fixture
def offline(hub_cache, tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 with the cache above (run_cli passes os.environ on)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def one_line_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_inspect_reads_the_cached_snapshot_offline(offline, cli):
    result = cli("inspect", REPO, "--json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["weight_form"] == "packed" and s["family"] == "bitnet"
    assert Path(s["path"]) == offline / "models--edgebit-test--tiny-bitnet" / "snapshots" / COMMIT_MAIN


@pytest.mark.parametrize("revision", ["v2", COMMIT_V2])
def test_revision_picks_the_other_snapshot(offline, cli, revision):
    result = cli("inspect", REPO, "--revision", revision, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["weight_form"] == "master"


def test_export_records_the_hub_source_and_verify_finds_it_again_through_the_cache(offline, tmp_path, cli,
                                                                                  monkeypatch):
    art = tmp_path / "art"
    result = cli("export", "onnx", REPO, "-o", art)
    assert result.returncode == 0, result.stderr
    source = json.loads((art / "manifest.json").read_text())["source"]
    assert source["hub"] == {"repo_id": REPO, "commit": COMMIT_MAIN}
    # Move the cache: the recorded path is gone, HF_HUB_CACHE says where the commit is now.
    moved = tmp_path / "moved-cache"
    shutil.move(offline, moved)
    monkeypatch.setenv("HF_HUB_CACHE", str(moved))
    result = cli("verify", art, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["reference"] == str(
        moved / "models--edgebit-test--tiny-bitnet" / "snapshots" / COMMIT_MAIN)
    one_line_error(cli("verify", art, "--revision", "v2"), "--revision", "--model")
    # And with the cache gone altogether, the error says which commit it looked for, and where.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    one_line_error(cli("verify", art), REPO, COMMIT_MAIN, str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE=1")


def test_missing_model_offline_is_one_line_naming_id_revision_and_cache(offline, cli):
    line = one_line_error(cli("inspect", "edgebit-test/not-cached"), "edgebit-test/not-cached", "revision main",
                          "no such local path", str(offline), "HF_HUB_OFFLINE=1", "run once online", "HF_HOME")
    assert "cached revisions" not in line


def test_missing_revision_offline_lists_the_cached_ones(offline, cli):
    one_line_error(cli("export", "onnx", REPO, "--revision", "v9", "-o", offline.parent / "out"),
                   REPO, "revision v9", str(offline), "cached revisions: main, v2", "HF_HUB_OFFLINE=1")
    assert not (offline.parent / "out").exists()
    one_line_error(cli("inspect", REPO, "--revision", "d" * 40), "d" * 40, str(offline))


def test_pickle_only_snapshot_is_refused(offline, cli):
    one_line_error(cli("inspect", PICKLE_REPO), PICKLE_REPO, "pytorch_model.bin", "safetensors only")


def test_partial_snapshot_offline_says_what_is_missing(offline, cli, hf_checkpoint):
    add_snapshot(offline, "edgebit-test/partial", "e" * 40,
                 {"config.json": (hf_checkpoint("bitnet", "packed") / "config.json").read_bytes()}, ("main",))
    one_line_error(cli("inspect", "edgebit-test/partial"), "lacks *.safetensors", "HF_HUB_OFFLINE=1")


def test_local_path_wins_and_other_specs_stay_not_found(offline, tmp_path, cli, monkeypatch, hf_checkpoint):
    from edgebit.model.hub import resolve_checkpoint

    local = tmp_path / "edgebit-test" / "tiny-bitnet"
    shutil.copytree(hf_checkpoint("bitnet", "packed"), local)
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(REPO) == Path(REPO)  # the relative path, not the cached snapshot
    for spec in ("no-such-dir", "a/b/c", "./x/y", "bad--name/x", "org/name.git"):
        result = cli("inspect", spec)
        one_line_error(result, spec.removeprefix("./"), "not a checkpoint directory")
    one_line_error(cli("inspect", local, "--revision", "v2"), "--revision", "local path")
    one_line_error(cli("inspect", "--revision", "v2"), "--revision")


def test_generate_and_bench_tokenizer_take_hub_ids(offline, cli):
    result = cli("generate", REPO, "--revision", "v2", "--prompt", "In", "-n", "3")
    assert result.returncode == 0, result.stderr
    result = cli("bench", "tokenizer", REPO, "--megabytes", "0.01", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mismatched_lines"] == 0


def test_cli_import_pulls_in_no_hub_client_nor_heavy_library():
    code = ("import sys, edgebit.cli.main; "
            "print(sorted(m for m in ('huggingface_hub', 'torch', 'onnx', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir()).stdout
    assert out.strip() == "[]"
