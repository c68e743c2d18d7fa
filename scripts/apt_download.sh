#!/usr/bin/env bash
# Downloads Debian packages (.deb files, no dependencies resolved) for any architecture without installing or
# configuring anything: apt-get runs against a private sources list, lists dir, cache dir and an empty dpkg status,
# so no system apt configuration is read or changed.
#
#   scripts/apt_download.sh ARCH SUITE DEST PACKAGE...     e.g. arm64 bookworm /tmp/debs openjdk-17-jre-headless
#
# Puts PACKAGE_*.deb into DEST. EDGEBIT_DEB_MIRROR and EDGEBIT_DEB_KEYRING override the mirror and keyring.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: apt_download.sh ARCH SUITE DEST PACKAGE..." >&2; exit 2; }
arch="$1" suite="$2" dest="$3"
shift 3
mirror="${EDGEBIT_DEB_MIRROR:-http://deb.debian.org/debian}"
keyring="${EDGEBIT_DEB_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "apt_download.sh: needs $tool (Debian/Ubuntu)" >&2; exit 1; }
done
[ -r "$keyring" ] || { echo "apt_download.sh: no Debian archive keyring at $keyring (apt install debian-archive-keyring)" >&2; exit 1; }

mkdir -p "$dest"
work="$(mktemp -d "${dest}/.apt.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc/sources.list.d" "$work/etc/preferences.d" \
         "$work/etc/apt.conf.d"
: > "$work/status"
printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$arch" "$keyring" "$mirror" "$suite" > "$work/etc/sources.list"
cat > "$work/apt.conf" <<CONF
Dir::Etc "$work/etc";
Dir::Etc::sourcelist "$work/etc/sources.list";
Dir::Etc::sourceparts "$work/etc/sources.list.d";
Dir::Etc::preferences "$work/etc/preferences";
Dir::Etc::preferencesparts "$work/etc/preferences.d";
Dir::Etc::parts "$work/etc/apt.conf.d";
Dir::State "$work";
Dir::State::lists "$work/lists";
Dir::State::status "$work/status";
Dir::Cache "$work";
Dir::Cache::archives "$work/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Debug::NoLocking "true";
APT::Sandbox::User "root";
APT::Architecture "$arch";
APT::Architectures "$arch";
Acquire::Languages "none";
CONF
export APT_CONFIG="$work/apt.conf"

echo "apt_download.sh: downloading $* ($arch) from $mirror $suite" >&2
apt-get -q update >&2
(cd "$dest" && apt-get -q download "$@" >&2)
