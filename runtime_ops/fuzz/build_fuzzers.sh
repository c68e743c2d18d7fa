#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang-14 (-fsanitize=fuzzer,address,undefined):
#   fuzz_kernels  the kernel core's C API, every x86 variant (runtime_ops/kernels)
#   fuzz_ort_op   edgebit.BitLinear in a real ONNX Runtime session (needs the onnxruntime wheel
#                 and ORT headers: EDGEBIT_ORT_INCLUDE_DIR or scripts/fetch_ort_headers.sh)
#   fuzz_et_op    edgebit::bitlinear.out through ExecuTorch's kernel registry (needs the executorch wheel:
#                 its headers, CMake config and libexecutorch.so; EDGEBIT_EXECUTORCH_DIR or found by PYTHON)
# usage: runtime_ops/fuzz/build_fuzzers.sh OUT_DIR [PYTHON]   (PYTHON finds the onnxruntime and executorch wheels)
# Exits 3 when clang-14 / libFuzzer is missing, so callers can tell "cannot build" from "broken".
# Without the executorch wheel fuzz_et_op is skipped with a message (and OUT_DIR/fuzz_et_op.skipped says why),
# except under CI=true, where that fails (exit 1) as the product build does (EDGEBIT_REQUIRE_EXECUTORCH).
# EDGEBIT_FUZZ_ET_EXTRA=-DEDGEBIT_FUZZ_STATS builds fuzz_et_op to print how often each outcome (each of the
# kernel's error messages, success with 2 threads, ...) happened, at exit: to see that every path is reached.
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
for f in scalar/ternary_scalar.cpp scalar/qlinear_scalar.cpp scalar/attention_scalar.cpp cpu_features.cpp \
         dispatch.cpp errors.cpp parallel_for.cpp quantize_rows.cpp ternary_api.cpp qlinear_api.cpp attention_api.cpp; do
  compile "$K/$f"
done
compile "$K/x86/ternary_avx2.cpp" -mavx2
compile "$K/x86/qlinear_avx2.cpp" -mavx2
compile "$K/x86/attention_avx2.cpp" -mavx2 -mf16c -mfma
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

# ---- fuzz_et_op: the op's source, instrumented, against the wheel's libexecutorch.so -------------------------
rm -f "$OUT/fuzz_et_op.skipped"
ET_ROOT="${EDGEBIT_EXECUTORCH_DIR:-}"
# find_spec only, as runtime_ops/executorch/CMakeLists.txt does: importing executorch would import torch.
[ -n "$ET_ROOT" ] || ET_ROOT="$(env -u PYTHONPATH "$PY" -c 'import importlib.util as u; s = u.find_spec("executorch"); print(list(s.submodule_search_locations)[0] if s else "")' 2>/dev/null || true)"
if [ -z "$ET_ROOT" ] || [ ! -f "$ET_ROOT/share/cmake/executorch-config.cmake" ]; then
  why="no executorch package ${ET_ROOT:+at $ET_ROOT }for $PY (share/cmake/executorch-config.cmake not found; set EDGEBIT_EXECUTORCH_DIR)"
  if [ "${CI:-}" = true ]; then echo "build_fuzzers: fuzz_et_op: $why" >&2; exit 1; fi
  echo "build_fuzzers: skipping fuzz_et_op: $why" >&2
  echo "$why" > "$OUT/fuzz_et_op.skipped"
  exit 0
fi
# Include dirs, compile definitions and the library dir come from the wheel's own CMake config (the variables a
# consumer on CMake < 3.28 applies, as runtime_ops/executorch/CMakeLists.txt does), read by a tiny configure.
mkdir -p "$OUT/et-config"
cat > "$OUT/et-config/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(edgebit_et_config NONE)
find_package(executorch CONFIG REQUIRED PATHS "${ET_ROOT}/share/cmake" NO_DEFAULT_PATH)
list(APPEND EXECUTORCH_COMPILE_DEFINITIONS ET_USE_THREADPOOL)  # parallel_for from the threadpool library
list(REMOVE_DUPLICATES EXECUTORCH_COMPILE_DEFINITIONS)
list(JOIN EXECUTORCH_INCLUDE_DIRS "\n" _inc)
list(JOIN EXECUTORCH_COMPILE_DEFINITIONS "\n" _def)
get_filename_component(_lib "${EXECUTORCH_RUNTIME_LIBRARY_DIR}" REALPATH)
file(WRITE "${CMAKE_BINARY_DIR}/include_dirs" "${_inc}\n")
file(WRITE "${CMAKE_BINARY_DIR}/definitions" "${_def}\n")
file(WRITE "${CMAKE_BINARY_DIR}/library_dir" "${_lib}\n")
CMAKE
cmake -S "$OUT/et-config" -B "$OUT/et-config/build" -DET_ROOT="$ET_ROOT" >"$OUT/et-config/cmake.log" 2>&1 \
  || { echo "build_fuzzers: fuzz_et_op: the executorch CMake config under $ET_ROOT failed (see $OUT/et-config/cmake.log)" >&2; exit 1; }
ET_FLAGS=()
while read -r d; do [ -n "$d" ] && ET_FLAGS+=(-isystem "$d"); done < "$OUT/et-config/build/include_dirs"
while read -r d; do [ -n "$d" ] && ET_FLAGS+=("-D$d"); done < "$OUT/et-config/build/definitions"
ET_LIB="$(cat "$OUT/et-config/build/library_dir")"
"$CXX" "${FLAGS[@]}" "${SAN[@]}" -fsanitize=fuzzer ${EDGEBIT_FUZZ_ET_EXTRA:-} "${ET_FLAGS[@]}" \
  "$HERE/fuzz_et_op.cpp" "$REPO/runtime_ops/executorch/edgebit_executorch_ops.cpp" "${objs[@]}" \
  "$ET_LIB/libexecutorch.so" "$ET_LIB/libexecutorch_threadpool.so" -Wl,-rpath,'$ORIGIN' -o "$OUT/fuzz_et_op"
# Both SONAMEs are the plain file names; libexecutorch_threadpool.so finds libexecutorch.so next to itself.
ln -sf "$ET_LIB/libexecutorch.so" "$OUT/libexecutorch.so"
ln -sf "$ET_LIB/libexecutorch_threadpool.so" "$OUT/libexecutorch_threadpool.so"
echo "built $OUT/fuzz_et_op"
