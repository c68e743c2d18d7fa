"""Hugging Face Hub ids wherever a checkpoint is taken: `edgebit export onnx ORG/NAME -o art`.

Resolution order: an existing local path always wins; otherwise ORG/NAME (the Hub's repo id charset, checked by
huggingface_hub's own validator) names a model repo on the Hub; anything else is returned unchanged, so the loader
reports it as not found. A Hub id resolves to a snapshot directory in huggingface_hub's cache (HF_HOME /
HF_HUB_CACHE), at a branch, tag or commit (`revision`, default main). HF_HUB_OFFLINE=1, or a Hub that cannot be
reached, means cache only; a model or revision that is not cached is one error naming id, revision and cache.

Only the files edgebit reads are downloaded (config, safetensors weights and index, tokenizer, chat template),
never a pickle: edgebit reads safetensors only. The snapshot's path records where it came from
(`.../models--ORG--NAME/snapshots/<commit>`), which `hub_origin` reads back for an artifact's manifest, so
`edgebit verify ART` finds the same commit again through the cache.

huggingface_hub is imported only when a Hub id is resolved, never for a local path or `edgebit --help`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from edgebit.errors import EdgebitError
from edgebit.model.checkpoint import INDEX_NAME as INDEX
from edgebit.model.checkpoint import PICKLE_SUFFIXES

CONFIG = "config.json"
# Everything of a checkpoint that edgebit reads besides the weights (tokenizer and chat template files are copied
# into artifacts; generation_config.json carries eos ids).
METADATA_FILES = (CONFIG, "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "chat_template.jinja", "chat_template.json")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_FOLDER = "models--"

ProgressFn = Callable[[int, int], None]
"""on_progress(bytes downloaded so far, bytes to download): called only when something is downloaded."""


class HubError(EdgebitError):
    """A Hub id that cannot be resolved to a usable snapshot: not cached while offline, unknown, pickle-only."""


def is_hub_id(spec: str) -> bool:
    """ORG/NAME with the Hub's repo id rules. A bare NAME is not taken: it is far more likely a missing local dir."""
    if spec.count("/") != 1:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def resolve_checkpoint(spec: str | Path, revision: str | None = None,
                       on_progress: ProgressFn | None = None) -> Path:
    """A checkpoint directory for SPEC: the local path if it exists, else the cached (downloaded if need be)
    snapshot of Hub id SPEC at REVISION. Other specs come back as paths for the loader to report as missing."""
    path = Path(spec)
    if path.exists():
        if revision is not None:
            raise HubError(f"--revision: {spec} is a local path; --revision selects a revision of a Hugging Face "
                           "Hub id (ORG/NAME)")
        from edgebit.model.gguf import gguf_source

        gguf = gguf_source(path)
        if gguf is not None:  # a GGUF file becomes a checkpoint directory with its tokenizer beside it
            from edgebit.model.gguf.view import gguf_view

            return gguf_view(gguf)
        return path
    if not is_hub_id(str(spec)):
        if revision is not None:
            raise HubError(f"--revision: {spec} is neither an existing path nor a Hugging Face Hub id (ORG/NAME)")
        return path
    return hub_snapshot(str(spec), revision, on_progress)


def hub_origin(checkpoint_dir: str | Path) -> dict | None:
    """{"repo_id", "commit"} if CHECKPOINT_DIR is a snapshot in a huggingface_hub cache, else None. Read from the
    cache layout (`models--ORG--NAME/snapshots/<commit>`); repo ids cannot contain "--", so the split is exact."""
    snapshot = Path(checkpoint_dir).resolve()
    repo_folder = snapshot.parent.parent
    if not (_COMMIT.fullmatch(snapshot.name) and snapshot.parent.name == "snapshots"
            and repo_folder.name.startswith(_REPO_FOLDER)):
        return None
    parts = repo_folder.name[len(_REPO_FOLDER):].split("--")
    if len(parts) != 2 or not all(parts):
        return None
    return {"repo_id": "/".join(parts), "commit": snapshot.name}


def cache_blobs_dir(checkpoint_dir: str | Path) -> Path | None:
    """The blobs/ dir a cache snapshot's files link into (they resolve outside the snapshot dir, by design of the
    cache), or None for any other directory."""
    if hub_origin(checkpoint_dir) is None:
        return None
    return Path(checkpoint_dir).resolve().parent.parent / "blobs"


def hub_snapshot(repo_id: str, revision: str | None = None, on_progress: ProgressFn | None = None) -> Path:
    """The snapshot directory of REPO_ID at REVISION holding every file edgebit reads. Online: the revision is
    resolved to a commit, the commit's file list fetched and only the missing wanted files downloaded. Offline
    (HF_HUB_OFFLINE=1 or no network): the cached snapshot of the cached ref, checked for what edgebit needs."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import OfflineModeIsEnabled, RevisionResolutionError

    api = HfApi()
    offline = "HF_HUB_OFFLINE=1 forbids downloads" if constants.is_offline_mode() else None
    where = _Where(repo_id, revision, Path(constants.HF_HUB_CACHE))
    try:
        resolved = api.resolve_revision(repo_id, revision=revision, local_files_only=offline is not None)
    except RevisionResolutionError as e:  # offline (or unreachable) and the ref is not in the cache
        raise where.not_cached(offline or _unreachable(e.__cause__)) from None
    except Exception as e:
        _raise_hub_answer(where, e)
        raise
    where.commit = resolved.resolved
    if offline is None:
        from huggingface_hub.utils import httpx  # its HTTP client (httpx2 in 2.x): transport errors = no network

        from huggingface_hub.errors import HfHubHTTPError

        try:
            files = _remote_files(api, repo_id, where.commit)
        except (httpx.TransportError, OfflineModeIsEnabled) as e:
            offline = _unreachable(e)
        except HfHubHTTPError as e:
            if e.response is None or e.response.status_code < 500:
                _raise_hub_answer(where, e)
                raise
            offline = _unreachable(e)  # the Hub is down: the cache serves, as huggingface_hub's own downloads do
        else:
            _download(where, files, on_progress)
    snapshot = where.snapshot_dir()
    if not snapshot.is_dir():
        raise where.not_cached(offline or "nothing was downloaded")
    # Online, everything wanted has just been downloaded; offline, the snapshot may hold only part of a model
    # (say config and tokenizer fetched by another tool): that is "not cached", not "the model has no weights".
    present = {p.name: 0 for p in snapshot.iterdir() if p.is_file()}
    has_weights = any(n.endswith((".safetensors", *PICKLE_SUFFIXES)) for n in present)
    if CONFIG in present and has_weights:
        missing = [n for n in _wanted(where, present, snapshot / INDEX) if n not in present]  # index shards
    else:
        missing = [n for n, ok in ((CONFIG, CONFIG in present), ("*.safetensors", has_weights)) if not ok]
    if missing:
        raise where.incomplete(missing, offline or "nothing was downloaded")
    return snapshot


class _Where:
    """What the error messages name: the id, the revision asked for, its commit once known, the cache."""

    def __init__(self, repo_id: str, revision: str | None, cache: Path):
        self.repo_id, self.revision, self.cache, self.commit = repo_id, revision or "main", cache, None

    def __str__(self) -> str:
        commit = f", commit {self.commit[:12]}" if self.commit and self.commit != self.revision else ""
        return f"{self.repo_id} (revision {self.revision}{commit})"

    def repo_dir(self) -> Path:
        return self.cache / (_REPO_FOLDER + self.repo_id.replace("/", "--"))

    def snapshot_dir(self) -> Path:
        return self.repo_dir() / "snapshots" / self.commit

    def not_cached(self, reason: str) -> HubError:
        refs = self.repo_dir() / "refs"
        cached = sorted(p.name for p in refs.iterdir() if p.is_file()) if refs.is_dir() else []
        have = f" (cached revisions: {', '.join(cached)})" if cached else ""
        # "no such local path" too: ORG/NAME may be a mistyped relative directory rather than a model.
        return HubError(f"{self}: no such local path, and not in the Hugging Face cache {self.cache}{have} and "
                        f"{reason}; run once online to download it, or set HF_HOME or HF_HUB_CACHE to a cache that "
                        "has it")

    def incomplete(self, missing: list[str], reason: str) -> HubError:
        return HubError(f"{self}: the cached snapshot {self.snapshot_dir()} lacks {', '.join(missing)} and "
                        f"{reason}; run once online to complete it, or set HF_HOME or HF_HUB_CACHE to a cache that "
                        "has it")


def _unreachable(error: BaseException | None) -> str:
    what = f" ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})" if error else ""
    return f"the Hub could not be reached{what}"


def _raise_hub_answer(where: _Where, e: Exception) -> None:
    """The Hub answered no: one line for the cases a user can act on; anything else propagates as is."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(e, GatedRepoError):
        raise HubError(f"{where.repo_id}: gated model; accept its terms on the Hub and log in (`hf auth login` or "
                       "HF_TOKEN)") from None
    if isinstance(e, RepositoryNotFoundError):
        raise HubError(f"{where.repo_id}: no such local path, and no such model on the Hugging Face Hub (a private "
                       "model needs `hf auth login` or HF_TOKEN)") from None
    if isinstance(e, RevisionNotFoundError):
        raise HubError(f"{where}: no such revision on the Hub (--revision takes a branch, tag or commit "
                       "hash)") from None
    from huggingface_hub.utils import httpx

    if isinstance(e, httpx.TransportError):  # e.g. a misconfigured proxy: not a reason to fall back silently
        raise HubError(f"{where}: {_unreachable(e)}") from None
    if isinstance(e, HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "?"
        raise HubError(f"{where}: the Hub answered HTTP {status} ({str(e).strip().splitlines()[0]})") from None


def _remote_files(api, repo_id: str, commit: str) -> dict[str, int]:
    """Top-level files of the commit -> size. edgebit reads a checkpoint's top level only, so sub-folders (other
    formats, original/ weights) are never fetched. One request without retries (model_info, not the paginated
    tree listing, which backs off for ~30 s): a dead network shows at once and the cache takes over."""
    info = api.model_info(repo_id, revision=commit, files_metadata=True)
    return {s.rfilename: s.size or 0 for s in info.siblings or [] if "/" not in s.rfilename}


def _wanted(where: _Where, files: dict[str, int], index: Path | None) -> list[str]:
    """The files of FILES that edgebit reads: metadata, then the weights (the shards the index names when there
    is an index, else every *.safetensors). INDEX is where the index can be read, once it is local."""
    if CONFIG not in files:
        raise HubError(f"{where}: no {CONFIG}; edgebit reads Transformers-format checkpoints (config.json, "
                       "*.safetensors, tokenizer.json)")
    weights = sorted(n for n in files if n.endswith(".safetensors"))
    if not weights:
        pickles = sorted(n for n in files if n.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise HubError(f"{where}: weights only as PyTorch pickles ({', '.join(pickles)}); edgebit reads "
                           "safetensors only (unpickling can run code): use a revision or model with *.safetensors")
        raise HubError(f"{where}: no *.safetensors weight files")
    wanted = [n for n in METADATA_FILES if n in files]
    if INDEX in files:
        wanted.append(INDEX)
        shards = _index_shards(index) if index is not None and index.is_file() else None
        # An index that does not parse or names no listed shard: take every shard; the loader names the fault.
        weights = sorted(set(shards) & set(weights)) if shards else weights
    return wanted + weights


def _index_shards(index: Path) -> list[str] | None:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return sorted({v for v in weight_map.values() if isinstance(v, str)})
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _download(where: _Where, files: dict[str, int], on_progress: ProgressFn | None) -> None:
    """Fetch the wanted files of the commit that are not in its snapshot yet: the index first (it says which
    shards are wanted), then the rest, each file written by huggingface_hub (atomically, into its cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import httpx

    snapshot = where.snapshot_dir()

    def fetch(names: list[str], report: Callable[[int], None]) -> None:
        for name in names:
            try:  # always our counter: huggingface_hub's own tqdm bars would fight the CLI's rich display
                hf_hub_download(where.repo_id, name, revision=where.commit, tqdm_class=_byte_counter(report))
            except (httpx.TransportError, LocalEntryNotFoundError) as e:  # the connection went away midway
                raise HubError(f"{where}: downloading {name} failed ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}); run again: the files downloaded so far "
                               f"stay in {where.cache}") from None
            except Exception as e:
                _raise_hub_answer(where, e)
                raise

    _wanted(where, files, None)  # refuse (no config, pickles only, no weights) before anything is fetched
    if INDEX in files and not (snapshot / INDEX).is_file():
        fetch([INDEX], lambda n: None)
    todo = [n for n in _wanted(where, files, snapshot / INDEX) if not (snapshot / n).is_file()]
    total, done = sum(files[n] or 0 for n in todo), 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    fetch(todo, report)


def _byte_counter(report: Callable[[int], None]) -> type:
    """A tqdm stand-in for hf_hub_download that passes the bytes written to REPORT. huggingface_hub builds its bars
    from the class it is given (plain HTTP: one bar per file, advanced per chunk); defining update_transfer makes it
    report Xet downloads through that same single bar (bytes on disk) instead of a second, network-bytes bar."""

    class ByteCounter:
        def __init__(self, *args, total=None, initial=0, **kwargs):
            self.total, self.n = total, 0
            self.update(initial)

        def update(self, n=1) -> None:
            if n:
                self.n += n
                report(n)

        def update_transfer(self, n=1) -> None:  # network bytes; progress counts bytes on disk
            pass

        def set_postfix_str(self, *args, **kwargs) -> None:
            pass

        set_transfer_postfix_str = set_description = set_description_str = refresh = set_postfix_str

        def close(self) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

    return ByteCounter
