#!/usr/bin/env bash
# Builds and runs kernel_tests everywhere this machine can: natively (auto and each x86
# variant forced via EDGEBIT_KERNEL), with UBSan, and cross-built for aarch64 under
# qemu-aarch64 on three emulated CPUs (cortex-a53: NEON only, neoverse-n1: dot-product,
# max: i8mm) plus an aarch64 UBSan build.
#   usage: runtime_ops/tests/run_kernel_tests.sh [build-dir]   (default ./build/kernel-tests)
# Prints "N passed, N failed" summed over all runs last; exits non-zero on any failure.
# With CI=true a missing cross tool is an error; otherwise the ARM part is skipped loudly.
set -u

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-./build/kernel-tests}"
mkdir -p "$BUILD" && BUILD="$(cd "$BUILD" && pwd)"
JOBS="${EDGEBIT_BUILD_JOBS:-2}"
UBSAN_FLAGS="-fsanitize=undefined -fno-sanitize-recover=all -g"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

total_passed=0
total_failed=0

die() { echo "run_kernel_tests: $*" >&2; echo "$total_passed passed, $((total_failed + 1)) failed"; exit 1; }

need() {  # need <tool> <why>: true if present; error under CI, warning otherwise
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${CI:-}" = "true" ]; then die "required tool '$1' not found ($2); CI must install it"; fi
  echo "!!!!!!!! WARNING: '$1' not found ($2): SKIPPING those tests !!!!!!!!" >&2
  return 1
}

build() {  # build <dir> [cmake args...]
  local dir="$1"; shift
  echo "== configure+build $dir"
  cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DEDGEBIT_BUILD_TESTS=ON "$@" \
        >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" --target kernel_tests -j "$JOBS" >"$dir.build.log" 2>&1 \
        || { tail -50 "$dir.build.log"; return 1; }
}

# run <label> <expect-regex-or-empty> <command...>: adds the program's own counts; a crash,
# signal, missing summary or missing expected text counts as one more failure.
run() {
  local label="$1" expect="$2"; shift 2
  echo "== run [$label]: $*"
  local out rc summary
  out="$("$@" 2>&1)"; rc=$?
  summary="$(printf '%s\n' "$out" | tail -n 1)"
  printf '%s\n' "$out" | grep -E '^(FAIL|EDGEBIT_KERNEL|auto-selected|variant )' || true
  if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    total_passed=$((total_passed + BASH_REMATCH[1]))
    total_failed=$((total_failed + BASH_REMATCH[2]))
  else
    printf '%s\n' "$out" | tail -n 20
    total_failed=$((total_failed + 1))
    echo "   -> no summary line (crash or signal?), exit $rc"
    return
  fi
  if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" = "0" ]; then
    total_failed=$((total_failed + 1)); echo "   -> exit $rc with no failed check"
  fi
  if [ -n "$expect" ] && ! printf '%s\n' "$out" | grep -qE "$expect"; then
    total_failed=$((total_failed + 1)); echo "   -> expected output matching /$expect/"
  fi
  echo "   -> $summary (exit $rc)"
}

need cmake "builds the tests" || die "cmake is required"

# ---- host ---------------------------------------------------------------------------
if build "$BUILD/host"; then
  run "host auto" "" "$BUILD/host/kernel_tests"
  for v in scalar avx2 avx512vnni; do
    run "host EDGEBIT_KERNEL=$v" "EDGEBIT_KERNEL=$v (selected|rejected)" \
        env EDGEBIT_KERNEL="$v" "$BUILD/host/kernel_tests"
  done
else
  total_failed=$((total_failed + 1)); echo "host build failed"
fi
if build "$BUILD/host-ubsan" -DCMAKE_CXX_FLAGS="$UBSAN_FLAGS"; then
  run "host ubsan" "" "$BUILD/host-ubsan/kernel_tests"
else
  total_failed=$((total_failed + 1)); echo "host ubsan build failed"
fi

# ---- aarch64 under qemu ---------------------------------------------------------------
if need aarch64-linux-gnu-g++ "aarch64 cross build" && need qemu-aarch64 "runs aarch64 tests"; then
  TC="$SRC/cmake/aarch64-linux-gnu.cmake"
  if build "$BUILD/aarch64" -DCMAKE_TOOLCHAIN_FILE="$TC"; then
    T="$BUILD/aarch64/kernel_tests"
    run "qemu cortex-a53" "neon_dotprod +compiled, unsupported" qemu-aarch64 -cpu cortex-a53 "$T"
    # Forcing dot-product on a CPU without it must be a status, not SIGILL.
    run "qemu cortex-a53 EDGEBIT_KERNEL=neon_dotprod" "EDGEBIT_KERNEL=neon_dotprod rejected" \
        env EDGEBIT_KERNEL=neon_dotprod qemu-aarch64 -cpu cortex-a53 "$T"
    run "qemu cortex-a53 EDGEBIT_KERNEL=neon_i8mm" "EDGEBIT_KERNEL=neon_i8mm rejected" \
        env EDGEBIT_KERNEL=neon_i8mm qemu-aarch64 -cpu cortex-a53 "$T"
    run "qemu neoverse-n1" "neon_dotprod +compiled, supported" qemu-aarch64 -cpu neoverse-n1 "$T"
    run "qemu max" "neon_i8mm +compiled, supported" qemu-aarch64 -cpu max "$T"
  else
    total_failed=$((total_failed + 1)); echo "aarch64 build failed"
  fi
  # Dynamically linked: static libubsan.a cannot be linked after libstdc++ (see toolchain).
  if build "$BUILD/aarch64-ubsan" -DCMAKE_TOOLCHAIN_FILE="$TC" -DCMAKE_CXX_FLAGS="$UBSAN_FLAGS" \
           -DEDGEBIT_STATIC_EXE=OFF; then
    run "qemu max ubsan" "" qemu-aarch64 -cpu max -L "${EDGEBIT_AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}" \
        "$BUILD/aarch64-ubsan/kernel_tests"
  else
    total_failed=$((total_failed + 1)); echo "aarch64 ubsan build failed"
  fi
fi

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
