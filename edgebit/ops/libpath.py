"""Where edgebit's compiled libraries are: installed next to the package by `pip install .` (edgebit/lib/),
or in $EDGEBIT_LIB_DIR for a developer's own CMake build of runtime_ops/."""

from __future__ import annotations

import os
import platform
import struct
from pathlib import Path

from edgebit.errors import EdgebitError


def find_library(name: str, how_to_build: str) -> Path:
    candidates = [Path(os.environ["EDGEBIT_LIB_DIR"]) / name] if os.environ.get("EDGEBIT_LIB_DIR") else []
    candidates.append(Path(__file__).resolve().parent.parent / "lib" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise EdgebitError(f"{candidates[-1]}: missing; {how_to_build}")


# ELF e_machine values of the targets edgebit builds for (and the common foreign ones, for the message).
ELF_MACHINES = {3: "x86", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv"}
HOST_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}


def check_loadable(path: Path, what: str) -> None:
    """Refuse a shared library this process cannot load, with a message that says why, before dlopen does
    (dlopen's own error for an aarch64 library on x86 is "wrong ELF class" or "cannot open shared object")."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            size = os.fstat(f.fileno()).st_size
            phdrs = _program_headers(f, head)
    except OSError as e:
        raise EdgebitError(f"{path}: cannot read {what} ({e.strerror})") from None
    if len(head) < 64 or head[:4] != b"\x7fELF":
        raise EdgebitError(f"{path}: not a shared library (no ELF header; truncated or not a build of {what})")
    bits = {1: 32, 2: 64}.get(head[4], 0)
    order = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", head[18:20])
    host = HOST_MACHINES.get(platform.machine().lower())
    if host is not None and (machine != host or bits != 64):
        built = ELF_MACHINES.get(machine, f"ELF machine {machine}")
        raise EdgebitError(
            f"{path}: {what} built for {built} ({bits}-bit), this machine is {platform.machine()}: it cannot load "
            f"here; re-export on this machine, or use `edgebit bundle --target` / `edgebit profile` to run on {built}")
    # A truncated library passes dlopen's header checks and then faults (SIGBUS) touching a mapped page past the
    # end of the file: every loadable segment must lie inside the file.
    if any(offset + filesz > size for offset, filesz in phdrs):
        raise EdgebitError(f"{path}: {what} is truncated ({size} bytes; its segments extend past the end): "
                           "re-export, or copy it again")


def _program_headers(f, head: bytes) -> list[tuple[int, int]]:
    """(p_offset, p_filesz) of each PT_LOAD segment of a 64-bit little-endian ELF file; [] for anything else."""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return []
    (phoff,) = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if phentsize < 56 or phnum > 1024:
        return []
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    if len(table) < phentsize * phnum:
        return [(phoff, phentsize * phnum)]  # the table itself is cut off: reported as truncated
    out = []
    for i in range(phnum):
        p_type, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if p_type == 1:  # PT_LOAD
            out.append((offset, filesz))
    return out
