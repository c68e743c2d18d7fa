"""What a Linux bundle needs from the device it runs on, read from its ELF files, and the check of a device against
it before anything is pushed: the newest glibc symbol version any file uses (a device with an older glibc cannot
load the runner) and the shared libraries the bundle does not carry (libstdc++, libgcc_s, glibc's own), each with
the Debian / Raspberry Pi OS package that provides it. The dynamic loader's own complaints, should a device still
fail to load the runner, are put in the same words."""

from __future__ import annotations

import re
import struct
from pathlib import Path


# Debian (and so Raspberry Pi OS, Ubuntu) package of each library a bundle may leave to the device.
PACKAGES = {"libc.so.6": "libc6", "libm.so.6": "libc6", "libdl.so.2": "libc6", "libpthread.so.0": "libc6",
            "librt.so.1": "libc6", "ld-linux-aarch64.so.1": "libc6", "ld-linux-x86-64.so.2": "libc6",
            "libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1", "libgomp.so.1": "libgomp1",
            "libatomic.so.1": "libatomic1"}
# First Debian release with at least this glibc (Raspberry Pi OS follows Debian's releases).
DEBIAN_GLIBC = [((2, 28), "10 buster"), ((2, 31), "11 bullseye"), ((2, 36), "12 bookworm"), ((2, 41), "13 trixie")]
MULTIARCH = {"aarch64-linux-gnu": "aarch64-linux-gnu", "host-x86_64": "x86_64-linux-gnu",
             "host-aarch64": "aarch64-linux-gnu"}

SHT_DYNAMIC, SHT_GNU_VERNEED, DT_NEEDED = 6, 0x6FFFFFFE, 1


def elf_needs(path: Path) -> tuple[list[str], set[str]] | None:
    """(DT_NEEDED sonames, symbol versions required, e.g. GLIBC_2.34) of a 64-bit little-endian ELF file; None for
    anything else."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def string(strtab: int, off: int) -> str:
        start = sections[strtab][4] + off
        return data[start:data.index(b"\0", start)].decode()

    needed, versions = [], set()
    for _, sh_type, _, _, off, size, link, info, _, _ in sections:
        if sh_type == SHT_DYNAMIC:
            for pos in range(off, off + size, 16):
                tag, val = struct.unpack_from("<qQ", data, pos)
                if tag == DT_NEEDED:
                    needed.append(string(link, val))
        elif sh_type == SHT_GNU_VERNEED:
            pos = off
            for _ in range(info):  # Elf64_Verneed entries, each with vn_cnt Elf64_Vernaux entries
                _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    _, _, _, name, anext = struct.unpack_from("<IHHII", data, apos)
                    versions.add(string(link, name))
                    apos += anext
                pos += nxt
    return needed, versions


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def bundle_requirements(bundle: Path) -> dict:
    """{"glibc": "2.36", "glibc_needed_by": file, "libraries": {soname: [package, first file needing it]}}: what the
    device must provide for every ELF file under bin/ and lib/ to load."""
    files = sorted(p for d in ("bin", "lib") for p in (bundle / d).glob("*") if p.is_file())
    carried = {p.name for p in files}
    glibc, by, libraries = (2, 17), "", {}
    for p in files:
        needs = elf_needs(p)
        if needs is None:
            continue
        rel = p.relative_to(bundle).as_posix()
        for soname in needs[0]:
            if soname not in carried and soname not in libraries:
                libraries[soname] = [PACKAGES.get(soname, ""), rel]
        for v in needs[1]:
            m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", v)
            if m and _version(m.group(1)) > glibc:
                glibc, by = _version(m.group(1)), rel
    return {"glibc": ".".join(map(str, glibc)), "glibc_needed_by": by, "libraries": libraries}


def check_script(req: dict, target: str) -> str:
    """A POSIX sh script for the device: 'glibc X.Y' (or 'glibc none') and a 'missing SONAME' line per library the
    dynamic loader would not find: in none of the standard directories, and not at any path ld.so's cache gives
    for it (a cache entry alone may be stale: the file it names must exist)."""
    arch = MULTIARCH.get(target, "")
    dirs = " ".join(d for d in (f"/lib/{arch}", f"/usr/lib/{arch}") if arch) + " /lib /usr/lib /lib64 /usr/lib64"
    libs = " ".join(sorted(req["libraries"]))
    return ('v=$(getconf GNU_LIBC_VERSION 2>/dev/null) && echo "glibc ${v#glibc }" || echo "glibc none"; '
            f'for l in {libs}; do for d in {dirs}; do [ -e "$d/$l" ] && continue 2; done; '
            '[ -n "${cache+x}" ] || cache=$(/sbin/ldconfig -p 2>/dev/null || true); '
            'for p in $(printf "%s\\n" "$cache" | awk -v l="$l" \'$1 == l { print $NF }\'); do '
            '[ -e "$p" ] && continue 2; done; echo "missing $l"; done')


def upgrade_hint(glibc: str) -> str:
    release = next((name for v, name in DEBIAN_GLIBC if v >= _version(glibc)), None)
    return (f"upgrade the device to Raspberry Pi OS / Debian {release} or newer" if release
            else f"upgrade the device to an OS with glibc {glibc} or newer")


def library_message(device: str, soname: str, needed_by: str | None = None) -> str:
    package = PACKAGES.get(soname)
    how = f"apt install {package}" if package else f"install the package that provides {soname}"
    who = f", which the bundle's {needed_by} needs" if needed_by else ""
    return f"{device}: the device has no {soname}{who}: on the device, {how} (Debian / Raspberry Pi OS)"


def glibc_message(device: str, have: str | None, need: str, needed_by: str, target: str) -> str:
    if have == "none":
        return (f"{device}: the device has no glibc (getconf GNU_LIBC_VERSION failed); the {target} bundle runs on "
                "glibc Linux systems such as Raspberry Pi OS and Debian")
    what = f"is {have}, older than" if have else "is older than"
    return (f"{device}: the device's glibc {what} the {need} the {target} bundle needs ({needed_by}): "
            f"{upgrade_hint(need)}")


def check_output(device: str, output: str, req: dict, target: str) -> str | None:
    """The first thing the device lacks, from check_script's output, as a one-line message; None if nothing."""
    lines = output.split("\n")
    have = next((l.split(" ", 1)[1].strip() for l in lines if l.startswith("glibc ")), "none")
    if have == "none" or not re.fullmatch(r"\d+(\.\d+)+", have) or _version(have) < _version(req["glibc"]):
        return glibc_message(device, have, req["glibc"], req["glibc_needed_by"], target)
    for l in lines:
        if l.startswith("missing "):
            soname = l.split(" ", 1)[1].strip()
            return library_message(device, soname, req["libraries"].get(soname, [None, None])[1])
    return None


def loader_message(device: str, stderr: str, target: str) -> str | None:
    """The dynamic loader's failure to start the runner, in the words of check_output; None if it is not one."""
    m = re.search(r"error while loading shared libraries: ([^:\s]+): cannot open shared object file", stderr)
    if m:
        return library_message(device, m.group(1))
    m = re.search(r"version `GLIBC_([\d.]+)' not found \(required by ([^)]+)\)", stderr)
    if m:
        return glibc_message(device, None, m.group(1), m.group(2).rsplit("/", 1)[-1], target)
    return None
