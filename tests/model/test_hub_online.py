"""The download path of Hub ids, against a local server that answers as the Hub does (huggingface_hub reads
HF_ENDPOINT): repo info at a revision (with file sizes when asked), HEAD/GET on resolve/ (small files served directly with a
git-blob ETag, LFS files as a redirect to a separate "CDN" origin carrying X-Linked-Etag/X-Linked-Size, as the
Hub does), and the Hub's X-Error-Code on 404s. Nothing leaves 127.0.0.1."""

import hashlib
import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = "edgebit-test/tiny-bitnet"
SHARDED = "edgebit-test/sharded"
PICKLE_REPO = "edgebit-test/pickle-only"
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")
# Files a repo may hold that edgebit never reads: a pickle, a card, a sub-folder with another format.
EXTRAS = {"pytorch_model.bin": b"\x80\x04not fetched", "README.md": b"# card\n", "onnx/model.onnx": b"onnx bytes"}


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """repo id -> {"refs": {name: commit}, "commits": {commit: {path: bytes}}}; `requests` logs (method, path)."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.blobs: dict[str, bytes] = {}
        self.down = False  # answer 503 to everything, as the Hub does in an outage

    def add(self, repo_id: str, files: dict[str, bytes], refs=("main",)) -> str:
        commit = hashlib.sha1(repo_id.encode() + b"".join(p.encode() + hashlib.sha256(d).digest()
                                                          for p, d in sorted(files.items()))).hexdigest()
        repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
        repo["commits"][commit] = files
        repo["refs"].update({ref: commit for ref in refs})
        for data in files.values():
            self.blobs[hashlib.sha256(data).hexdigest()] = data
        return commit

    def fetched(self) -> list[str]:
        """Repo file paths whose content was GET (from resolve/ or from the CDN)."""
        names = {hashlib.sha256(d).hexdigest(): p for r in self.repos.values() for c in r["commits"].values()
                 for p, d in c.items()}
        out = []
        for method, path in self.requests:
            if method == "GET" and "/resolve/" in path:
                out.append(path.split("/resolve/", 1)[1].split("/", 1)[1])
            elif method == "GET" and path.startswith("/cdn/"):
                out.append(names[path.removeprefix("/cdn/")])
        return sorted(out)


def make_handler(hub: FakeHub, cdn_origin: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def error(self, code: str, head: bool):
            self.reply(404, json.dumps({"error": code}).encode(), {"X-Error-Code": code}, head)

        def commit_of(self, repo_id: str, rev: str):
            repo = hub.repos.get(repo_id)
            if repo is None:
                return None, "RepoNotFound"
            commit = repo["refs"].get(rev, rev if rev in repo["commits"] else None)
            return commit, None if commit else "RevisionNotFound"

        def handle_any(self, head: bool):
            path, query = urlsplit(self.path).path, urlsplit(self.path).query
            hub.requests.append((self.command, path))
            if hub.down:
                return self.reply(503, b"Service Unavailable", {}, head)
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) in (4, 6) and parts[4:5] in ([], ["revision"]):
                repo_id, rev = f"{parts[2]}/{parts[3]}", parts[5] if len(parts) == 6 else "main"
                commit, err = self.commit_of(repo_id, rev)
                if err:
                    return self.error(err, head)
                siblings = []
                for p, data in sorted(hub.repos[repo_id]["commits"][commit].items()):
                    sibling = {"rfilename": p}
                    if "blobs" in query:  # files_metadata=True: sizes, blob ids, LFS pointers
                        sibling.update(size=len(data), blobId=git_blob_id(data))
                        if p.endswith(LFS_SUFFIXES):
                            sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                              "pointerSize": 134}
                    siblings.append(sibling)
                body = {"id": repo_id, "sha": commit, "siblings": siblings}
                return self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, rev, name = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
                commit, err = self.commit_of(repo_id, rev)
                if err:
                    return self.error(err, head)
                data = hub.repos[repo_id]["commits"][commit].get(name)
                if data is None:
                    return self.error("EntryNotFound", head)
                if name.endswith(LFS_SUFFIXES):  # LFS: metadata here, bytes from the CDN
                    sha = hashlib.sha256(data).hexdigest()
                    return self.reply(302, b"", {"X-Repo-Commit": commit, "X-Linked-Etag": f'"{sha}"',
                                                 "X-Linked-Size": str(len(data)),
                                                 "Location": f"{cdn_origin}/cdn/{sha}"}, head)
                return self.reply(200, data, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"'}, head)
            if parts[0] == "cdn" and len(parts) == 2 and parts[1] in hub.blobs:
                return self.reply(200, hub.blobs[parts[1]], {}, head)
            return self.reply(404, b"not found", {}, head)

        def do_GET(self):
            self.handle_any(head=False)

        def do_HEAD(self):
            self.handle_any(head=True)

    return Handler


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """Two local servers (the Hub and its CDN, two origins as on the real Hub) and an empty HF cache."""
    hub = FakeHub()
    cdn = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(hub, ""))
    cdn_origin = f"http://127.0.0.1:{cdn.server_address[1]}"
    api = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(hub, cdn_origin))
    for server in (cdn, api):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{api.server_address[1]}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    yield hub
    for server in (api, cdn):
        server.shutdown()
        server.server_close()


def checkpoint_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def sharded_files(path: Path) -> dict[str, bytes]:
    """The checkpoint split into two shards with an index, plus a consolidated copy the index does not name."""
    from safetensors.torch import load_file, save

    tensors = load_file(path / "model.safetensors")
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    files = {k: v for k, v in checkpoint_files(path).items() if k != "model.safetensors"}
    for shard, keys in halves.items():
        files[shard] = save({k: tensors[k] for k in keys}, metadata={"format": "pt"})
    files["model.safetensors.index.json"] = json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in halves.items() for k in keys}}).encode()
    files["consolidated.safetensors"] = (path / "model.safetensors").read_bytes()
    return files


def one_line_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_download_fetches_only_what_edgebit_reads_then_works_offline(fake_hub, hf_checkpoint, cli, tmp_path,
                                                                    monkeypatch):
    files = checkpoint_files(hf_checkpoint("bitnet", "packed"))
    commit = fake_hub.add(REPO, {**files, **EXTRAS})
    result = cli("inspect", REPO, "--json")
    assert result.returncode == 0, result.stderr
    snapshot = tmp_path / "hf-cache" / "models--edgebit-test--tiny-bitnet" / "snapshots" / commit
    assert json.loads(result.stdout)["path"] == str(snapshot)
    assert fake_hub.fetched() == sorted(files)  # no pickle, no card, nothing from the sub-folder
    assert (snapshot.parent.parent / "refs" / "main").read_text() == commit
    # Cached now: offline, and with the Hub unreachable, the same snapshot serves without a download.
    fake_hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert json.loads(cli("inspect", REPO, "--json").stdout)["path"] == str(snapshot)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    fake_hub.down = True
    result = cli("inspect", REPO, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(snapshot) and fake_hub.fetched() == []
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    fake_hub.requests.clear()
    result = cli("inspect", REPO, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(snapshot) and fake_hub.requests == []


def test_a_second_revision_downloads_beside_the_first(fake_hub, hf_checkpoint, cli):
    fake_hub.add(REPO, checkpoint_files(hf_checkpoint("bitnet", "packed")))
    fake_hub.add(REPO, checkpoint_files(hf_checkpoint("bitnet", "master")), refs=("v2",))
    forms = [json.loads(cli("inspect", REPO, *rev, "--json").stdout)["weight_form"] for rev in ([], ["--revision", "v2"])]
    assert forms == ["packed", "master"]


def test_sharded_repo_fetches_the_index_and_its_shards_only(fake_hub, hf_checkpoint, cli):
    files = sharded_files(hf_checkpoint("bitnet", "packed"))
    fake_hub.add(SHARDED, files)
    result = cli("inspect", SHARDED, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["weight_form"] == "packed"
    assert fake_hub.fetched() == sorted(n for n in files if n != "consolidated.safetensors")


def test_progress_reaches_the_bytes_downloaded(fake_hub, hf_checkpoint):
    files = checkpoint_files(hf_checkpoint("bitnet", "packed"))
    fake_hub.add(REPO, files)
    code = ("import json; from edgebit.model.hub import resolve_checkpoint; calls = []; "
            f"resolve_checkpoint({REPO!r}, None, lambda done, total: calls.append((done, total))); "
            "print(json.dumps(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir()).stdout
    calls = json.loads(out)
    total = sum(len(d) for d in files.values())
    assert calls[-1] == [total, total] and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_pickle_only_repo_is_refused_before_any_download(fake_hub, hf_checkpoint, cli):
    config = (hf_checkpoint("bitnet", "packed") / "config.json").read_bytes()
    fake_hub.add(PICKLE_REPO, {"config.json": config, "pytorch_model.bin": b"\x80\x04pickle"})
    one_line_error(cli("inspect", PICKLE_REPO), PICKLE_REPO, "pytorch_model.bin", "safetensors only")
    assert fake_hub.fetched() == []


def test_hub_answers_become_one_line_errors(fake_hub, hf_checkpoint, cli, tmp_path):
    fake_hub.add(REPO, checkpoint_files(hf_checkpoint("bitnet", "packed")))
    one_line_error(cli("inspect", "edgebit-test/no-such-model"), "edgebit-test/no-such-model", "no such model")
    one_line_error(cli("export", "onnx", REPO, "--revision", "v9", "-o", tmp_path / "out"), REPO, "v9",
                   "no such revision")
    one_line_error(cli("inspect", REPO, "--revision", "f" * 40), "f" * 40, "no such revision")
    assert not (tmp_path / "out").exists()


def test_unreachable_hub_and_nothing_cached(fake_hub, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    one_line_error(cli("inspect", REPO), REPO, "revision main", str(tmp_path / "hf-cache"),
                   "could not be reached", "run once online")
