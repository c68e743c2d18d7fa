#!/usr/bin/env bash
# Tests the Android app's engine class (EdgebitEngine) and its JNI bridge on this machine's JVM, against the real
# engine: builds the host bundle (libedgebit_engine.so and the runtimes), compiles the bridge with the host g++ from
# the same sources the app's NDK build compiles (every .cpp in engine/src/main/cpp), compiles the Java classes with
# javac, exports the shipped model, writes down what `edgebit run` generates for a few prompts, and runs
# jvm-test's EngineHarness, which prints one line per check and then `N passed, N failed`.
#
# Needs: javac/java with jni.h (Debian: default-jdk-headless), g++, the `edgebit` command and python3 on PATH.
# EDGEBIT_JVM_TEST_DIR=DIR keeps the build and artifacts there (default: a temporary dir, removed at the end);
# EDGEBIT_JVM_TEST_THREADS (default 1) is the thread count for the engine and for `edgebit run`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
threads="${EDGEBIT_JVM_TEST_THREADS:-1}"
max_new_tokens=24

die() { echo "test-on-jvm.sh: $*" >&2; exit 1; }
step() { echo "== $*"; }

for tool in javac java g++ edgebit python3; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH (javac/java: apt install default-jdk-headless; edgebit: pip install . from the repo)"
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

step "host bundle (the engine library and its runtimes)"
edgebit bundle --target host -o "$work/bundle" >"$work/bundle.log" 2>&1 || { cat "$work/bundle.log" >&2; die "edgebit bundle --target host failed"; }
engine_lib="$work/bundle/lib/libedgebit_engine.so"
[ -f "$engine_lib" ] || die "the host bundle has no lib/libedgebit_engine.so"

step "JNI bridge, host build of engine/src/main/cpp/*.cpp"
# The flags of engine/src/main/cpp/CMakeLists.txt, plus -Werror: this build is the bridge's compile check.
mkdir -p "$work/jni"
g++ -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
  -I "$repo/runtime_ops/engine" -I "$java_home/include" -I "$java_home/include/linux" \
  "$here"/engine/src/main/cpp/*.cpp \
  "$engine_lib" -Wl,-rpath,"$work/bundle/lib" -Wl,--no-undefined \
  -o "$work/jni/libedgebit_jni.so"

step "Java: EdgebitEngine (engine/src/main/java) and the harness (jvm-test/src)"
mkdir -p "$work/classes"
find "$here/engine/src/main/java" "$here/jvm-test/src" -name '*.java' >"$work/java-sources.txt"
javac -Xlint:all -Werror -d "$work/classes" "@$work/java-sources.txt"

quietly() {  # LOG COMMAND...: runs it, shows its output only when it fails
  local log="$1"; shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; die "failed: $*"; }
}

step "artifacts of the shipped model (ONNX, .pte), and an ONNX one of it with a chat template added"
mkdir -p "$work/artifacts"
quietly "$work/export-onnx.log" edgebit export onnx -o "$work/artifacts/onnx"
quietly "$work/export-pte.log" edgebit export executorch -o "$work/artifacts/pte"
shipped="$(python3 -c 'import edgebit, pathlib; print(pathlib.Path(edgebit.__file__).parent / "data" / "models" / "bitnet-kjv-small")')"
cp -r "$shipped" "$work/chat-model"
# Turns as BitNet b1.58 2B4T writes them ("Role: content" closed by the end token), here with this model's tokens.
python3 - "$work/chat-model/tokenizer_config.json" <<'EOF'
import json, pathlib, sys
path = pathlib.Path(sys.argv[1])
config = json.loads(path.read_text(encoding="utf-8"))
config["chat_template"] = ("{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}"
                           "{{ eos_token }}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}")
path.write_text(json.dumps(config, indent=2), encoding="utf-8")
EOF
quietly "$work/export-chat.log" edgebit export onnx "$work/chat-model" -o "$work/artifacts/chat-onnx"

step "expected text: edgebit run"
expected="$work/expected"
write_case() {  # label artifact_dir runtime case_name prompt
  local dir="$expected/artifacts/$1"
  mkdir -p "$dir/cases/$4"
  printf '%s' "$2" >"$dir/dir.txt"
  printf '%s' "$3" >"$dir/runtime.txt"
  edgebit run "$2" --prompt "$5" --max-new-tokens "$max_new_tokens" --threads "$threads" --json >"$dir/cases/$4/run.json"
  python3 - "$dir/cases/$4" "$5" "$max_new_tokens" <<'EOF'
import json, pathlib, sys
out, prompt, max_new = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
run = json.loads((out / "run.json").read_text(encoding="utf-8"))
(out / "prompt.txt").write_bytes(prompt.encode("utf-8"))
(out / "max_new_tokens.txt").write_text(max_new)
(out / "text.txt").write_bytes(run["text"].encode("utf-8"))
(out / "prompt_ids.txt").write_text(",".join(map(str, run["prompt_ids"])))
(out / "generated_ids.txt").write_text(",".join(map(str, run["generated_ids"])))
EOF
}
# A plain prompt, and one whose UTF-8 has 2-, 3- and 4-byte characters (JNI's modified UTF-8 would mangle the emoji).
for label in onnx pte; do
  runtime=onnxruntime; [ "$label" = pte ] && runtime=executorch
  write_case "$label" "$work/artifacts/$label" "$runtime" ascii "And God said"
  write_case "$label" "$work/artifacts/$label" "$runtime" unicode "In the beginning — “God” créa 🌍 the heaven"
done
write_case chat-onnx "$work/artifacts/chat-onnx" onnxruntime ascii "And God said"

step "expected chat: edgebit-runner --chat"
chat="$expected/artifacts/chat-onnx/chat"
mkdir -p "$chat"
printf '%s' "You answer briefly." >"$chat/system.txt"
printf '%s' "Who made the heaven?" >"$chat/turn1.txt"
printf '%s' "And the earth?" >"$chat/turn2.txt"
printf '%s' 12 >"$chat/max_new_tokens.txt"
# Each reply, then a newline, on stdout; prompts and figures go to stderr.
printf '%s\n%s\n/quit\n' "$(cat "$chat/turn1.txt")" "$(cat "$chat/turn2.txt")" |
  "$work/bundle/bin/edgebit-runner" "$work/artifacts/chat-onnx" --chat --system "$(cat "$chat/system.txt")" \
    --max-new-tokens "$(cat "$chat/max_new_tokens.txt")" --threads "$threads" \
    >"$chat/runner-stdout.txt" 2>"$work/runner-chat.log" ||
  { cat "$work/runner-chat.log" >&2; die "edgebit-runner --chat failed"; }

# A missing dir (its name is not ASCII) and what the engine says about it through the bundle's own CLI runner.
bad="$work/no-such-artefakt-ä-🙂"
printf '%s' "$bad" >"$expected/bad-dir-path.txt"
if "$work/bundle/bin/edgebit-runner" "$bad" --prompt "In" >/dev/null 2>"$expected/bad-dir-runner-stderr.txt"; then
  die "edgebit-runner accepted the missing artifact dir $bad"
fi
cp -r "$work/artifacts/onnx" "$work/corrupt"
printf '{"format": "edgebit-artifact", "target": ' >"$work/corrupt/manifest.json"
printf '%s' "$work/corrupt" >"$expected/corrupt-dir-path.txt"

step "EngineHarness on the JVM"
# -Xcheck:jni: the JVM checks every JNI call of the bridge and reports misuse.
set +e
java -Xcheck:jni -Dedgebit.jni.library="$work/jni/libedgebit_jni.so" -cp "$work/classes" \
  dev.edgebit.harness.EngineHarness "$expected" "$threads" 2>&1 | tee "$work/harness.log"
status="${PIPESTATUS[0]}"
set -e
if grep -q "WARNING in native method" "$work/harness.log"; then
  die "-Xcheck:jni reported misuse of JNI by the bridge (above)"
fi
exit "$status"
