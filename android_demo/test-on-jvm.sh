#!/usr/bin/env bash
# Tests the Android app's engine class (EdgebitEngine) and its JNI bridge on real JVMs against the real engine:
#   1. this machine: the host bundle's libedgebit_engine.so, the bridge compiled with g++ from the same sources the
#      app's NDK build compiles (every .cpp in engine/src/main/cpp), the Java classes compiled with javac;
#   2. aarch64: the aarch64 bundle's engine (ARM kernels), the same bridge sources cross-compiled, in Debian's arm64
#      OpenJDK under qemu-aarch64, loading the aarch64 op libraries in place of the artifacts' own, as the app does.
# Both run jvm-test's EngineHarness on the shipped model's artifacts against what `edgebit run` and `edgebit-runner`
# produce (jvm-test/write-expected.sh); each prints one line per check and its own `N passed, N failed`; the last
# line is the total.
#
# Needs: javac/java with jni.h (Debian: default-jdk-headless), g++, the `edgebit` command and python3 on PATH; for
# step 2 qemu-aarch64 and aarch64-linux-gnu-g++ (apt: qemu-user g++-aarch64-linux-gnu) and Debian's package
# servers once (jvm-test/arm64-sysroot.sh caches the arm64 JRE). EDGEBIT_JVM_TEST_AARCH64=0 leaves step 2 out.
# EDGEBIT_JVM_TEST_DIR=DIR keeps the build and artifacts there (default: a temporary dir, removed at the end);
# EDGEBIT_JVM_TEST_THREADS (default 1) is the thread count for the engine and for `edgebit run`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
threads="${EDGEBIT_JVM_TEST_THREADS:-1}"
aarch64="${EDGEBIT_JVM_TEST_AARCH64:-1}"

die() { echo "test-on-jvm.sh: $*" >&2; exit 1; }
step() { echo "== $*"; }
quietly() {  # LOG COMMAND...: runs it, shows its output only when it fails
  local log="$1"; shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; die "failed: $*"; }
}

tools=(javac java g++ edgebit python3)
[ "$aarch64" = 1 ] && tools+=(qemu-aarch64 aarch64-linux-gnu-g++)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH (javac/java: apt install default-jdk-headless; \
qemu-aarch64, aarch64-linux-gnu-g++: apt install qemu-user g++-aarch64-linux-gnu, or EDGEBIT_JVM_TEST_AARCH64=0; \
edgebit: pip install . from the repo)"
done
java_home="${JAVA_HOME:-}"
if [ -z "$java_home" ] || [ ! -f "$java_home/include/jni.h" ]; then
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
fi
[ -f "$java_home/include/jni.h" ] || die "no include/jni.h in the JDK at $java_home (set JAVA_HOME to a full JDK)"

if [ -n "${EDGEBIT_JVM_TEST_DIR:-}" ]; then
  work="$EDGEBIT_JVM_TEST_DIR"
  rm -rf "$work"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

build_bridge() {  # COMPILER BUNDLE OUT: the bridge sources against BUNDLE/lib/libedgebit_engine.so
  # The flags of engine/src/main/cpp/CMakeLists.txt, plus -Werror: this build is the bridge's compile check.
  # jni.h and jni_md.h are the same for every Linux architecture.
  mkdir -p "$(dirname "$3")"
  "$1" -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
    -I "$repo/runtime_ops/engine" -I "$java_home/include" -I "$java_home/include/linux" \
    "$here"/engine/src/main/cpp/*.cpp \
    "$2/lib/libedgebit_engine.so" -Wl,-rpath,"$2/lib" -Wl,--no-undefined -Wl,--allow-shlib-undefined \
    -o "$3"
}

passed=0
failed=0
run_harness() {  # LOG JAVA [JAVA OPTIONS...] -- [HARNESS ARGS...]: EngineHarness; its counts go into the totals
  local log="$1" status summary
  shift
  local java_cmd=()
  while [ "$1" != -- ]; do java_cmd+=("$1"); shift; done
  shift
  set +e
  # -Xcheck:jni: the JVM checks every JNI call of the bridge and reports misuse.
  "${java_cmd[@]}" -Xcheck:jni -cp "$work/classes" dev.edgebit.harness.EngineHarness "$work/expected" "$threads" "$@" \
    2>&1 | tee "$log"
  status="${PIPESTATUS[0]}"
  set -e
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1 || true)"
  if [ -z "$summary" ]; then
    echo "FAIL the harness printed no summary (exit $status)"
    failed=$((failed + 1))
    return
  fi
  local p="${summary%% passed*}" f="${summary#*, }"
  f="${f%% failed*}"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL the harness exited $status"
    failed=$((failed + 1))
  fi
  if grep -q "WARNING in native method" "$log"; then
    echo "FAIL -Xcheck:jni reported misuse of JNI by the bridge (above)"
    failed=$((failed + 1))
  fi
}

step "host bundle (the engine library and its runtimes)"
quietly "$work/bundle.log" edgebit bundle --target host -o "$work/bundle"
[ -f "$work/bundle/lib/libedgebit_engine.so" ] || die "the host bundle has no lib/libedgebit_engine.so"

step "JNI bridge, host build of engine/src/main/cpp/*.cpp"
build_bridge g++ "$work/bundle" "$work/jni/libedgebit_jni.so"

step "Java: EdgebitEngine (engine/src/main/java) and the harness (jvm-test/src)"
mkdir -p "$work/classes"
find "$here/engine/src/main/java" "$here/jvm-test/src" -name '*.java' >"$work/java-sources.txt"
javac -Xlint:all -Werror -d "$work/classes" "@$work/java-sources.txt"

step "artifacts, and what edgebit run / edgebit-runner make of them"
bash "$here/jvm-test/write-expected.sh" "$work" "$work/expected" "$work/bundle/bin/edgebit-runner" "$threads" 24

step "EngineHarness on this machine's JVM"
run_harness "$work/harness-host.log" java -Dedgebit.jni.library="$work/jni/libedgebit_jni.so" --

if [ "$aarch64" = 1 ]; then
  step "aarch64: bundle, cross-built JNI bridge, arm64 JRE sysroot"
  quietly "$work/bundle-aarch64.log" edgebit bundle --target aarch64-linux-gnu -o "$work/bundle-aarch64"
  build_bridge aarch64-linux-gnu-g++ "$work/bundle-aarch64" "$work/jni-aarch64/libedgebit_jni.so"
  sysroot="$(bash "$here/jvm-test/arm64-sysroot.sh" 2>"$work/sysroot.log")" ||
    { cat "$work/sysroot.log" >&2; die "jvm-test/arm64-sysroot.sh failed"; }

  step "EngineHarness on an arm64 JVM under qemu-aarch64"
  run_harness "$work/harness-aarch64.log" qemu-aarch64 -L "$sysroot" \
    "$sysroot/usr/lib/jvm/java-17-openjdk-arm64/bin/java" \
    -Dedgebit.jni.library="$work/jni-aarch64/libedgebit_jni.so" -- "$work/bundle-aarch64/lib"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
