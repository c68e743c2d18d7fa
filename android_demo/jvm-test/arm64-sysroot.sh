#!/usr/bin/env bash
# An arm64 sysroot in which qemu-aarch64 runs Debian's arm64 OpenJDK, so test-on-jvm.sh can load the aarch64 build
# of the JNI bridge and engine into a real arm64 JVM: the JRE and zlib .debs (scripts/apt_download.sh; nothing is
# installed), the cross toolchain's aarch64 shared libc and libstdc++ (g++-aarch64-linux-gnu), and an arm64
# /proc/cpuinfo (qemu's -L redirects the runtimes' reads of it, which would otherwise see the x86 host's).
#
#   jvm-test/arm64-sysroot.sh [DEST]    (default $EDGEBIT_CACHE_DIR or ~/.cache/edgebit, /arm64-jvm-sysroot); prints DEST
#
# Reuses a complete DEST without touching the network. Bookworm's JRE: its glibc needs are met by the cross libc
# of bookworm and of every later Debian.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$(dirname "$here")")"
dest="${1:-${EDGEBIT_CACHE_DIR:-${HOME}/.cache/edgebit}/arm64-jvm-sysroot}"
libc="${EDGEBIT_AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
java_rel="usr/lib/jvm/java-17-openjdk-arm64/bin/java"

if [ -x "$dest/$java_rel" ] && [ -s "$dest/proc/cpuinfo" ]; then echo "$dest"; exit 0; fi
[ -f "$libc/lib/libc.so.6" ] || { echo "arm64-sysroot.sh: no aarch64 libc at $libc/lib (apt install g++-aarch64-linux-gnu)" >&2; exit 1; }

new="${dest}.new"
rm -rf "$new"
mkdir -p "$new/debs" "$new/lib" "$new/proc"
"$repo/scripts/apt_download.sh" arm64 bookworm "$new/debs" openjdk-17-jre-headless zlib1g
for deb in "$new"/debs/*.deb; do dpkg-deb -x "$deb" "$new"; done
rm -rf "$new/debs"
cp -a "$libc"/lib/*.so* "$new/lib/"
[ -x "$new/$java_rel" ] || { echo "arm64-sysroot.sh: the JRE package has no $java_rel" >&2; exit 1; }
# The arm64 cpuinfo the qemu transport of `edgebit profile` uses.
python3 -c 'import os, sys; from edgebit.profile.transports import ARM64_CPUINFO
sys.stdout.write("".join(ARM64_CPUINFO.format(n=i) for i in range(os.cpu_count() or 1)))' >"$new/proc/cpuinfo"
rm -rf "$dest"
mv "$new" "$dest"
echo "$dest"
