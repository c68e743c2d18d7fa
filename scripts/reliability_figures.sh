#!/usr/bin/env bash
# Prints the figures of docs/reliability.md, each from the test or tool that produces it:
#   fuzz executions and crashes per libFuzzer target, malformed checkpoint and artifact cases handled,
#   interrupted exports and partial artifacts found, device faults tried and handled.
# usage: scripts/reliability_figures.sh [FUZZ_SECONDS_PER_TARGET=120] [FUZZ_RUNS]   (FUZZ_RUNS, e.g. 1000000,
#        runs each target for that many executions instead; run it niced: it keeps a core busy for a long time)
# Needs edgebit installed (scripts/setup.sh) and, for the fuzz part, clang-14 + libclang-rt-14-dev.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SECONDS_PER="${1:-120}"
RUNS="${2:-}"
BUILD="${EDGEBIT_FUZZ_BUILD:-build/fuzz}"

echo "== fuzzing (ASan + UBSan, outputs held to the reference)"
bash runtime_ops/fuzz/run_fuzzers.sh "$BUILD" "$SECONDS_PER" "$RUNS" "$PY"

# pytest from the installed package (-P: not the source tree), the corpus counted from what actually ran.
count() {  # count LABEL TEST_FILES...: "LABEL: N passed, N failed, N skipped"
  local label="$1"; shift
  local out
  out="$("$PY" -P -m pytest -q -p no:cacheprovider -s "$@" 2>&1)"
  printf '%s\n' "$out" | grep -E "interrupted exports:|peak RSS" || true
  local summary
  summary="$(printf '%s\n' "$out" | tail -n 1)"
  echo "$label: $summary"
}
echo "== malformed inputs (each: exit 2, one line naming the file and tensor/key, no traceback)"
count "malformed checkpoints (cases through edgebit inspect)" tests/model/test_bad_checkpoints.py
count "malformed GGUF files (cases through edgebit inspect, and lying sizes under peak-RSS watch)" tests/reliability/test_bad_gguf.py
count "malformed artifacts (cases x verify/run/profile, and the native edgebit-runner)" tests/reliability/test_bad_artifacts.py
echo "== interrupted work"
count "kill -9 during export" tests/reliability/test_interrupted_export.py
echo "== devices (real loopback sshd) and shell injection"
count "device faults" tests/profile/test_device_faults.py
count "shell injection (local, qemu, ssh, prompts)" tests/profile/test_shell_injection.py
count "bad CLI options" tests/cli/test_bad_options.py
