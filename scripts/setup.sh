#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for edgebit: the system tools the C++ build, the emulated-ARM tests and
# the device-profiling tests need (apt: sshd for the loopback ssh test, adb for its no-device path, debootstrap +
# qemu-user-static + binfmt-support for the emulated Raspberry Pi of scripts/emulated-pi.sh, the JDK for
# android_demo/test-on-jvm.sh, clang-14 + libFuzzer for the fuzz targets in runtime_ops/fuzz), then edgebit itself
# with its test extras (pip; builds runtime_ops/ with CMake).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake g++ g++-aarch64-linux-gnu qemu-user openssh-client openssh-server adb bible-kjv bible-kjv-text
              default-jdk-headless clang-14 libclang-rt-14-dev debootstrap debian-archive-keyring qemu-user-static
              binfmt-support)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "setup.sh: missing ${missing[*]} and cannot install them (needs root and apt-get)" >&2
    exit 1
  else
    echo "setup.sh: warning: missing ${missing[*]}; install them (apt) for the cross-built ARM tests" >&2
  fi
fi

# ONNX Runtime's C/C++ headers for libedgebit_ort.so (the custom-op library): the pip wheel has none.
# A user's own include dir in EDGEBIT_ORT_INCLUDE_DIR wins; otherwise fetch Debian's (nothing is installed).
if [ "${CI:-}" = true ]; then export EDGEBIT_REQUIRE_ORT=ON; fi
# libedgebit_executorch.so (the ExecuTorch kernel library) builds against the executorch wheel's headers and
# libexecutorch.so, found in this interpreter's site-packages (or EDGEBIT_EXECUTORCH_DIR) when edgebit is built:
# so the wheel is installed before edgebit (below), not in the same pip run.
if [ "${CI:-}" = true ]; then export EDGEBIT_REQUIRE_EXECUTORCH=ON; fi
if [ -z "${EDGEBIT_ORT_INCLUDE_DIR:-}" ]; then
  if ort_inc="$(scripts/fetch_ort_headers.sh)"; then
    export EDGEBIT_ORT_INCLUDE_DIR="$ort_inc"
  elif [ "${CI:-}" = true ]; then
    echo "setup.sh: could not fetch the ONNX Runtime headers (scripts/fetch_ort_headers.sh)" >&2
    exit 1
  else
    echo "setup.sh: warning: no ONNX Runtime headers; libedgebit_ort.so (the ONNX Runtime op library) is not built" >&2
  fi
fi

python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('executorch') is None)" 2>/dev/null \
  || python3 -m pip install --quiet "executorch==1.5.1"
python3 -m pip install --quiet ".[test]"

# The device bundles `edgebit quickstart`, `edgebit profile` and the tests run (this machine, and aarch64 under
# qemu): built once here into ~/.cache/edgebit/bundles, so the first command does not wait on a C++ build.
if command -v aarch64-linux-gnu-g++ >/dev/null; then targets="host aarch64-linux-gnu"; else targets="host"; fi
(cd / && python3 -c "import sys; from edgebit.profile.bundle import build_bundle
for t in sys.argv[1:]: build_bundle(t, log=print)" $targets)
