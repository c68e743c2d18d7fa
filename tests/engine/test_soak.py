"""Hours of chat without growth (issue 22): `edgebit soak` on the shipped model, its verdict logic on figures with a
known leak and slowdown, and the same scenario under LeakSanitizer. CI soaks the shipped ONNX artifact for 3
minutes; EDGEBIT_SOAK_MINUTES=30 gives the long soak (its figures are in docs/reliability.md)."""

import json
import os

import pytest
from sanitizer_env import LSAN_ENV

from edgebit.errors import EdgebitError
from edgebit.soak import SoakLimits, judge, run_runner, warmup_seconds

SOAK_MINUTES = float(os.environ.get("EDGEBIT_SOAK_MINUTES", "3"))


def lines(n, seconds, rss_per_token=0.0, slow_from=None, slowdown=0.0, tokens_per=300):
    """n conversation lines over `seconds`: RSS growing rss_per_token bytes per token (plus a few-MB saw, as the
    allocator does), decode at 400 tok/s, `slowdown` slower from conversation slow_from on."""
    out = []
    for k in range(n):
        tokens = (k + 1) * tokens_per
        speed = 400.0 * (1 - slowdown if slow_from is not None and k >= slow_from else 1)
        saw = (k % 4) * 700_000
        out.append({"cycle": k, "elapsed_s": seconds * (k + 1) / n, "tokens": tokens, "turns": 5, "cancels": 1,
                    "generated": tokens_per, "cpu_ms": 1000 * tokens_per / speed,
                    "decode_tokens": tokens_per - 5, "decode_ms": 1000 * (tokens_per - 5) / speed,
                    "rss_bytes": int(60e6 + saw + rss_per_token * tokens),
                    "anonymous_bytes": int(30e6 + saw + rss_per_token * tokens)})
    out[0]["mode"], out[0]["engine"] = "completion", {"runtime": "onnxruntime"}
    return out


def test_a_steady_soak_passes_and_warmup_is_not_judged():
    cycles = lines(90, 180)
    for c in cycles[:8]:  # growth during warm-up (caches filling) is not a leak
        c["rss_bytes"] -= 20_000_000 - 2_500_000 * c["cycle"]
    r = judge("art", 180, 1, cycles)
    assert r.passed, r.failures
    assert r.warmup_cycles == sum(c["elapsed_s"] <= warmup_seconds(180) for c in cycles) > 0
    assert abs(r.rss_growth_bytes_per_10k_tokens) < 0.2e6 and abs(r.speed_drift) < 1e-9


def test_a_leak_of_150_bytes_a_token_fails():
    r = judge("art", 180, 1, lines(90, 180, rss_per_token=150))
    assert not r.passed and 1.4e6 < r.rss_growth_bytes_per_10k_tokens < 1.6e6  # the saw blurs the slope a little
    assert r.failures[0].startswith("RSS grows 1.") and "MB per 10,000 tokens after warm-up (limit 1)" in r.failures[0]


def test_a_slowdown_fails_and_a_speedup_does_not():
    slow = judge("art", 180, 1, lines(90, 180, slow_from=60, slowdown=0.08))
    assert not slow.passed and "generation slowed 8.0%" in slow.failures[0]
    assert judge("art", 180, 1, lines(90, 180, slow_from=60, slowdown=-0.3)).passed
    assert judge("art", 180, 1, lines(90, 180, slow_from=60, slowdown=0.08), SoakLimits(decode_slowdown=0.1)).passed


def test_too_short_a_soak_is_an_error():
    with pytest.raises(EdgebitError, match="drift needs at least 6"):
        judge("art", 30, 1, lines(6, 30))


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory, cli):
    """The shipped model's ONNX artifact at its own context (512 tokens: a conversation of about a dozen turns)."""
    d = tmp_path_factory.mktemp("soak") / "onnx"
    r = cli("export", "onnx", "-o", d, timeout=600)
    assert r.returncode == 0, r.stderr
    return d


def test_shipped_model_soak(shipped_onnx, cli, tmp_path):
    """The shipped model's ONNX artifact for SOAK_MINUTES."""
    out = tmp_path / "soak.json"
    # Judged at 10%, not the default 5%: on CI's shared 2-core VM, tokens per CPU second of this unchanged artifact
    # drifted by 5.9% in one 3-minute run (an immediate rerun: within 5%); a real slowdown over 500 conversations
    # (a growing cache, per-token work that grows) shows far beyond that, and the verdict logic is held at 8% on
    # synthetic figures above.
    r = cli("soak", shipped_onnx, "--minutes", SOAK_MINUTES, "--max-slowdown", "0.1", "--json", out,
            timeout=SOAK_MINUTES * 60 + 600)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["passed"] and res["mode"] == "completion" and res["engine"]["runtime"] == "onnxruntime"
    assert len(res["cycles"]) >= 20 and res["cancels"] > 0 and res["tokens"] > 5000
    assert res["rss_growth_bytes_per_10k_tokens"] < 1e6 and res["speed_drift"] > -0.1
    assert "growth" in r.stdout and "passed" in r.stdout


def test_pte_and_chat_soaks(shipped_artifacts, chat_artifact, cli, tmp_path):
    """A short soak of the .pte and of an artifact with a chat template (chat turns on the KV cache)."""
    for art, mode in ((shipped_artifacts["executorch"], "completion"), (chat_artifact, "chat")):
        out = tmp_path / f"{mode}.json"
        # Short soaks of small conversations check the scenario, not the speed: their few tokens a conversation
        # time too noisily for the 5% slowdown limit, which the 3-minute soak holds.
        r = cli("soak", art, "--minutes", "0.25", "--max-slowdown", "0.5", "--json", out, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        res = json.loads(out.read_text())
        assert res["mode"] == mode and res["cancels"] > 0 and len(res["cycles"]) >= 6, res
        assert min(c["turns"] for c in res["cycles"]) >= 2 and res["tokens"] > 15 * len(res["cycles"])


def test_soak_under_leak_sanitizer(address_bundle, shipped_artifacts, chat_artifact):
    """AddressSanitizer's LeakSanitizer over the same scenario: any leak (or memory error) is a non-zero exit
    with the report, which run_runner raises."""
    env = LSAN_ENV
    for art in (shipped_artifacts["onnx"], shipped_artifacts["executorch"], chat_artifact):
        cycles = run_runner(address_bundle / "bin" / "edgebit-runner", art, 10, 1, extra_env=env)
        assert len(cycles) >= 2 and cycles[-1]["tokens"] > 0


def test_a_failing_runner_or_no_artifact_is_one_line(host_bundle, tmp_path, cli):
    with pytest.raises(EdgebitError, match=r"soak of .* failed \(exit 2\): .*manifest"):
        run_runner(host_bundle / "bin" / "edgebit-runner", tmp_path, 1, 1)
    r = cli("soak", tmp_path, "--minutes", "0.1")
    assert r.returncode == 2 and "no manifest.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
