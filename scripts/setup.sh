#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for edgebit: the system tools the C++ build and the emulated-ARM
# tests need (apt), then edgebit itself with its test extras (pip; builds runtime_ops/ with CMake).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake g++ g++-aarch64-linux-gnu qemu-user)
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

python3 -m pip install --quiet ".[test]"
