#!/usr/bin/env bash
# Fetches the ONNX Runtime C/C++ API headers the custom-op library (runtime_ops/ort/) compiles against.
# The onnxruntime pip wheel ships no headers; Debian trixie's libonnxruntime-dev (ORT 1.21, ORT_API_VERSION 21)
# does, and a library built against API 21 loads in newer runtimes (1.31 here).
#
#   scripts/fetch_ort_headers.sh [DEST]      (DEST defaults to ~/.cache/edgebit/ort-headers)
#
# Downloads the .deb with scripts/apt_download.sh (nothing is installed, no system apt configuration is read or
# changed), unpacks it with dpkg -x under DEST and prints the include directory (the one holding
# onnxruntime_c_api.h) on stdout.
# Idempotent: an existing extraction is reused without touching the network.
set -euo pipefail

dest="${1:-${HOME}/.cache/edgebit/ort-headers}"
suite="${EDGEBIT_ORT_DEB_SUITE:-trixie}"
mirror="${EDGEBIT_ORT_DEB_MIRROR:-http://deb.debian.org/debian}"
keyring="${EDGEBIT_ORT_DEB_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
package=libonnxruntime-dev

find_include() { find "$1" -name onnxruntime_c_api.h -printf '%h\n' 2>/dev/null | sort | head -n1; }

root="${dest}/root"
if [ -d "$root" ]; then
  inc="$(find_include "$root")"
  if [ -n "$inc" ]; then echo "$inc"; exit 0; fi
fi

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "fetch_ort_headers.sh: needs $tool (Debian/Ubuntu)" >&2; exit 1; }
done
mkdir -p "$dest"
debs="$(mktemp -d "${dest}/.debs.XXXXXX")"
trap 'rm -rf "$debs"' EXIT
EDGEBIT_DEB_MIRROR="$mirror" EDGEBIT_DEB_KEYRING="$keyring" \
  "$(dirname "$0")/apt_download.sh" "$(dpkg --print-architecture)" "$suite" "$debs" "$package"
deb="$(ls "$debs"/*.deb)"

# Unpack into a fresh directory, then move it in place: an interrupted run leaves no half extraction.
rm -rf "${root}.new"
dpkg -x "$deb" "${root}.new"
inc_new="$(find_include "${root}.new")"
[ -n "$inc_new" ] || { echo "fetch_ort_headers.sh: $deb has no onnxruntime_c_api.h" >&2; exit 1; }
cp "$deb" "${root}.new/"
rm -rf "$root"
mv "${root}.new" "$root"
find_include "$root"
