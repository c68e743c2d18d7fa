"""ExecuTorch running an exported program.pte, with edgebit's kernel library loaded.

The KV cache lives in the program's mutable buffers; this backend keeps the position. reset() only sets the
position back to 0: the program masks every cached key after the query's position and overwrites a position
before attending to it, so entries left from an earlier sequence are never read (no reload needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebit.artifact import ArtifactError


class ExecutorchBackend:
    def __init__(self, artifact_dir: Path, manifest: dict, threads: int | None = None, profile: bool = False):
        import torch

        from edgebit.ops import executorch_library
        from edgebit.third_party_noise import native_probe_lines_dropped, python_noise_silenced

        library = manifest.get("op_library")
        with python_noise_silenced():  # ExecuTorch's pybindings are imported here (by the library's load first)
            if library:
                path = artifact_dir / library
                if not path.is_file():
                    raise ArtifactError(
                        f"{path}: missing; {manifest['model_file']} calls "
                        f"{', '.join(manifest.get('op_names', []))}, which this ExecuTorch kernel library implements: "
                        f"re-export, or put a build of it there (load it with ctypes.CDLL(path, RTLD_GLOBAL) before "
                        f"load_method)")
                try:
                    executorch_library.load(path)
                except executorch_library.ExecutorchLibraryError as e:
                    raise ArtifactError(str(e)) from None
            from executorch import version as et_version
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

        self.torch = torch
        self.model_path = artifact_dir / manifest["model_file"]
        with native_probe_lines_dropped():  # the threadpool starts here (third_party_noise.py)
            if threads:
                portable_lib._unsafe_reset_threadpool(threads)
            try:
                self.program = Runtime.get().load_program(str(self.model_path), enable_etdump=profile,
                                                          debug_buffer_size=0)
                self.method = self.program.load_method("forward")
            except Exception as e:  # the pybindings raise RuntimeError with the runtime's error code
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ArtifactError(f"{self.model_path}: executorch cannot load it: {first}") from None
        cfg = manifest["config"]
        self.vocab_size = cfg["vocab_size"]
        self.max_seq_len = manifest["max_seq_len"]
        # "last": forward returns the last position's logits only (edgebit's exports); absent: every position's.
        self.all_logits = manifest.get("logits", "all") == "all"
        self.threads = portable_lib._threadpool_get_thread_count()
        self.name = f"executorch {et_version.__version__}" + (" + xnnpack" if manifest.get("xnnpack") else "")
        self.reset()

    def reset(self) -> None:
        self.length = 0

    def forward(self, token_ids: list[int]) -> np.ndarray:
        torch = self.torch
        t = len(token_ids)
        if self.length + t > self.max_seq_len:
            raise ArtifactError(f"sequence of {self.length + t} tokens exceeds the artifact's max_seq_len "
                                f"{self.max_seq_len} (export with a larger --max-seq-len)")
        tokens = torch.tensor([token_ids], dtype=torch.long)
        positions = torch.arange(self.length, self.length + t, dtype=torch.long)
        try:
            (logits,) = self.method.execute([tokens, positions])
        except RuntimeError as e:
            raise ArtifactError(f"{self.model_path}: forward failed: {e}") from None
        self.length += t
        return logits[0].numpy()

    def write_etdump(self, path: Path) -> Path:
        """The ETDump of every call since load (needs profile=True)."""
        self.program.write_etdump_result_to_file(str(path), "")
        return path


def op_profile(etdump_path: Path) -> list[dict]:
    """Per-operator totals from an ETDump, via ExecuTorch's Inspector: one row per kernel or delegate call
    name (ours: `edgebit::rms_bitlinear.out`, `edgebit::bitlinear.out`, ...), with calls, total ms and share of all operator time, largest first."""
    import edgebit.ops.torch_ops  # noqa: F401  (the Inspector resolves our op's schema through torch.ops)
    from executorch.devtools import Inspector

    frame = Inspector(etdump_path=str(etdump_path)).to_dataframe()
    # OPERATOR_CALL wraps each kernel call; DELEGATE_CALL wraps a delegate's own events (XNNPACK reports its
    # operators) when it has any: counting the wrappers too would count that time twice.
    wrappers = {"OPERATOR_CALL", "Method::execute"}
    if any(frame["is_delegated_op"]):
        wrappers.add("DELEGATE_CALL")
    totals: dict[str, list[float]] = {}
    for block, name, raw in zip(frame["event_block_name"], frame["event_name"], frame["raw"]):
        if block != "Execute" or name in wrappers:
            continue
        name = name.removeprefix("native_call_")
        row = totals.setdefault(name, [0, 0.0])
        row[0] += len(raw)
        row[1] += float(sum(raw))
    all_ms = sum(ms for _, ms in totals.values()) or 1.0
    rows = [{"op": name, "calls": calls, "total_ms": ms, "share": ms / all_ms} for name, (calls, ms) in totals.items()]
    return sorted(rows, key=lambda r: -r["total_ms"])
