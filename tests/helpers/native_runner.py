"""Greedy tokens from edgebit's native runner (the host bundle's edgebit-runner), as a user runs it on an artifact."""

import json
import os
import subprocess


def native_runner_tokens(artifact, tmp_path, prompt: list[int], new_tokens: int) -> list[int]:
    """The native runner's greedy tokens after `prompt`, `new_tokens` of them (its bundle cache under tmp_path)."""
    from edgebit.profile.bundle import build_bundle

    runner = build_bundle("host").path / "bin" / "edgebit-runner"
    r = subprocess.run([str(runner), str(artifact), "--prompt-ids", ",".join(map(str, prompt)), "--gen-len",
                        str(new_tokens), "--runs", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "EDGEBIT_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)["generated_ids"]
