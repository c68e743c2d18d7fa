#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang-14 (-fsanitize=fuzzer,address,undefined):
#   fuzz_kernels  the kernel core's C API, every x86 variant (runtime_ops/kernels)
#   fuzz_ort_op   edgebit.BitLinear in a real ONNX Runtime session (needs the onnxruntime wheel
#                 and ORT headers: EDGEBIT_ORT_INCLUDE_DIR or scripts/fetch_ort_headers.sh)
# usage: runtime_ops/fuzz/build_fuzzers.sh OUT_DIR [PYTHON]   (PYTHON finds the onnxruntime wheel)
# Exits 3 when clang-14 / libFuzzer is missing, so callers can tell "cannot build" from "broken".
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
K="$HERE/../kernels"
OUT="${1:?usage: build_fuzzers.sh OUT_DIR [PYTHON]}"
PY="${2:-python3}"
CXX="${EDGEBIT_FUZZ_CXX:-clang++-14}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"

command -v "$CXX" >/dev/null || { echo "build_fuzzers: $CXX not found (apt install clang-14 libclang-rt-14-dev)" >&2; exit 3; }
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$OUT/probe.cpp"
"$CXX" -fsanitize=fuzzer "$OUT/probe.cpp" -o "$OUT/probe" 2>/dev/null \
  || { echo "build_fuzzers: $CXX cannot link -fsanitize=fuzzer (apt install libclang-rt-14-dev)" >&2; exit 3; }

SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -g -O1)
# -ffp-contract=off as in the product build: the float steps must round exactly as documented.
FLAGS=(-std=c++17 -ffp-contract=off -fno-fast-math -I"$K" -DEDGEBIT_HAVE_AVX2=1 -DEDGEBIT_HAVE_AVX512VNNI=1 -pthread)
objs=()
compile() {  # compile SRC [extra flags...]: an instrumented object for the kernel core
  local src="$1"; shift
  local obj="$OUT/core_$(basename "${src%.cpp}").o"
  "$CXX" "${FLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer-no-link "$@" -c "$src" -o "$obj"
  objs+=("$obj")
}
for f in scalar/ternary_scalar.cpp cpu_features.cpp dispatch.cpp errors.cpp parallel_for.cpp quantize_rows.cpp \
         ternary_api.cpp; do
  compile "$K/$f"
done
compile "$K/x86/ternary_avx2.cpp" -mavx2
compile "$K/x86/ternary_avx512vnni.cpp" -mavx512f -mavx512bw -mavx512vl -mavx512vnni

"$CXX" "${FLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer "$HERE/fuzz_kernels.cpp" "${objs[@]}" -o "$OUT/fuzz_kernels"
echo "built $OUT/fuzz_kernels"

ORT_INC="${EDGEBIT_ORT_INCLUDE_DIR:-}"
[ -n "$ORT_INC" ] || ORT_INC="$("$REPO/scripts/fetch_ort_headers.sh")"
[ -f "$ORT_INC/onnxruntime_c_api.h" ] || ORT_INC="$ORT_INC/onnxruntime"
ORT_LIB="$("$PY" -c 'import glob, os, onnxruntime as o; print(sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), "capi", "libonnxruntime.so*")))[0])')"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer -isystem "$ORT_INC" \
  "$HERE/fuzz_ort_op.cpp" "$REPO/runtime_ops/ort/edgebit_ort_ops.cpp" "${objs[@]}" \
  "$ORT_LIB" -Wl,-rpath,'$ORIGIN' -o "$OUT/fuzz_ort_op"
# The wheel's file is libonnxruntime.so.1.NN.N; its SONAME (what the program asks for) is .so.1.
ln -sf "$ORT_LIB" "$OUT/libonnxruntime.so.1"
echo "built $OUT/fuzz_ort_op"
