#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time or number of runs, printing one
# line per target:  "<target>: <N> executions, <C> crashes"  (the figures in docs/reliability.md).
# usage: runtime_ops/fuzz/run_fuzzers.sh BUILD_DIR SECONDS_PER_TARGET [RUNS] [PYTHON]
#   RUNS (optional, e.g. 1000000) stops each target after that many executions instead of the time.
# Exits 3 when clang-14/libFuzzer is missing (build_fuzzers.sh), 1 on any crash, 0 otherwise.
# Each target's corpus lives in BUILD_DIR/corpus-<target> and grows across runs; the inputs that once found a
# bug (runtime_ops/fuzz/regressions/<target>/, named after it) are read as a second corpus, so every pass
# replays them first. Without the executorch wheel (not under CI=true: build_fuzzers.sh fails there),
# fuzz_et_op prints "fuzz_et_op: skipped (<why>)".
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [RUNS] [PYTHON]}"
SECONDS_PER="${2:?seconds per target}"
RUNS="${3:-}"
PY="${4:-python3}"
bash "$HERE/build_fuzzers.sh" "$BUILD" "$PY" >/dev/null || exit $?

# ONNX Runtime keeps allocations alive for the process's life (its env, kernel registries):
# leak checking there would report ONNX Runtime, not edgebit. The kernel target and the ExecuTorch
# target (whose runtime frees what it allocates) keep it on.
declare -A asan=([fuzz_kernels]="detect_leaks=1" [fuzz_ort_op]="detect_leaks=0" [fuzz_et_op]="detect_leaks=1")
failed=0
for target in fuzz_kernels fuzz_ort_op fuzz_et_op; do
  if [ -f "$BUILD/$target.skipped" ]; then echo "$target: skipped ($(cat "$BUILD/$target.skipped"))"; continue; fi
  corpus="$BUILD/corpus-$target"
  mkdir -p "$corpus"
  seeds=()
  [ -d "$HERE/regressions/$target" ] && seeds=("$HERE/regressions/$target")
  limit=(-max_total_time="$SECONDS_PER")
  [ -n "$RUNS" ] && limit=(-runs="$RUNS")
  log="$BUILD/$target.log"
  (cd "$BUILD" && ASAN_OPTIONS="${asan[$target]}" UBSAN_OPTIONS=print_stacktrace=1 \
     "./$target" "${limit[@]}" -timeout=20 -rss_limit_mb=3000 -print_final_stats=1 "$corpus" "${seeds[@]}" >"$log" 2>&1)
  rc=$?
  runs="$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)"
  crashes=0
  if [ "$rc" -ne 0 ]; then crashes=1; failed=1; tail -40 "$log" >&2; fi
  echo "$target: $runs executions, $crashes crashes"
done
exit "$failed"
