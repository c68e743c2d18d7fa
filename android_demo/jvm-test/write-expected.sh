#!/usr/bin/env bash
# Exports the artifacts EngineHarness runs and writes down what edgebit's own front ends produce from them, in the
# layout jvm-test/src/dev/edgebit/harness/Expected.java reads:
#   WORK/artifacts/{onnx,pte}   the shipped model, ONNX and .pte
#   WORK/artifacts/chat-onnx    the shipped model with a chat template added, ONNX
#   EXPECTED/artifacts/LABEL/cases/NAME/   `edgebit run --json` for a prompt (text, prompt and generated ids)
#   EXPECTED/artifacts/chat-onnx/chat/     a two-turn `edgebit-runner --chat` conversation
#   EXPECTED/bad-dir-*, corrupt-dir-path.txt   a missing artifact dir (and edgebit-runner's message for it), and
#                                               an artifact with a corrupt manifest.json
#
#   jvm-test/write-expected.sh WORK EXPECTED RUNNER THREADS MAX_NEW_TOKENS     (RUNNER: a host bin/edgebit-runner)
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: write-expected.sh WORK EXPECTED RUNNER THREADS MAX_NEW_TOKENS" >&2; exit 2; }
work="$1" expected="$2" runner="$3" threads="$4" max_new_tokens="$5"

die() { echo "write-expected.sh: $*" >&2; exit 1; }
quietly() {  # LOG COMMAND...: runs it, shows its output only when it fails
  local log="$1"; shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; die "failed: $*"; }
}

mkdir -p "$work/artifacts" "$expected"
quietly "$work/export-onnx.log" edgebit export onnx -o "$work/artifacts/onnx"
quietly "$work/export-pte.log" edgebit export executorch -o "$work/artifacts/pte"
shipped="$(python3 -c 'import edgebit, pathlib; print(pathlib.Path(edgebit.__file__).parent / "data" / "models" / "bitnet-kjv-small")')"
rm -rf "$work/chat-model"
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

write_case() {  # LABEL RUNTIME CASE PROMPT
  local dir="$expected/artifacts/$1"
  mkdir -p "$dir/cases/$3"
  printf '%s' "$work/artifacts/$1" >"$dir/dir.txt"
  printf '%s' "$2" >"$dir/runtime.txt"
  edgebit run "$work/artifacts/$1" --prompt "$4" --max-new-tokens "$max_new_tokens" --threads "$threads" --json \
    >"$dir/cases/$3/run.json"
  python3 - "$dir/cases/$3" "$4" "$max_new_tokens" <<'EOF'
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
  write_case "$label" "$runtime" ascii "And God said"
  write_case "$label" "$runtime" unicode "In the beginning — “God” créa 🌍 the heaven"
done
write_case chat-onnx onnxruntime ascii "And God said"

chat="$expected/artifacts/chat-onnx/chat"
mkdir -p "$chat"
printf '%s' "You answer briefly." >"$chat/system.txt"
printf '%s' "Who made the heaven?" >"$chat/turn1.txt"
printf '%s' "And the earth?" >"$chat/turn2.txt"
printf '%s' 12 >"$chat/max_new_tokens.txt"
# Each reply, then a newline, on stdout; prompts and figures go to stderr.
printf '%s\n%s\n/quit\n' "$(cat "$chat/turn1.txt")" "$(cat "$chat/turn2.txt")" |
  "$runner" "$work/artifacts/chat-onnx" --chat --system "$(cat "$chat/system.txt")" \
    --max-new-tokens "$(cat "$chat/max_new_tokens.txt")" --threads "$threads" \
    >"$chat/runner-stdout.txt" 2>"$work/runner-chat.log" ||
  { cat "$work/runner-chat.log" >&2; die "edgebit-runner --chat failed"; }

# A missing dir (its name is not ASCII) and what the engine says about it through the bundle's own CLI runner.
bad="$work/no-such-artefakt-ä-🙂"
printf '%s' "$bad" >"$expected/bad-dir-path.txt"
if "$runner" "$bad" --prompt "In" >/dev/null 2>"$expected/bad-dir-runner-stderr.txt"; then
  die "edgebit-runner accepted the missing artifact dir $bad"
fi
rm -rf "$work/corrupt"
cp -r "$work/artifacts/onnx" "$work/corrupt"
printf '{"format": "edgebit-artifact", "target": ' >"$work/corrupt/manifest.json"
printf '%s' "$work/corrupt" >"$expected/corrupt-dir-path.txt"
