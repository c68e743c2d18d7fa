"""`edgebit doctor`: what this machine can do and what it lacks, per thing edgebit does, each missing piece with
the command that fixes it. Looks only (PATH, the installed libraries, the CPU); changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass

APT = "apt-get install -y"  # Debian/Ubuntu; scripts/setup.sh installs all of it


@dataclass
class Check:
    area: str  # what it is needed for
    name: str
    ok: bool
    detail: str  # what was found (a path, a version, a variant) or what is missing
    fix: str = ""  # the command that fixes it, when not ok

    def to_dict(self) -> dict:
        return asdict(self)


def _tool(area: str, name: str, command: str, fix: str) -> Check:
    path = shutil.which(command)
    return Check(area, name, path is not None, path or f"{command} not found on PATH", "" if path else fix)


def _version(command: list[str]) -> str:
    try:
        r = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return ((r.stdout or r.stderr).strip().splitlines() or [""])[0]


def _library(area: str, name: str, find) -> Check:
    from edgebit.errors import EdgebitError

    try:
        return Check(area, name, True, str(find()))
    except EdgebitError as e:
        return Check(area, name, False, str(e), "pip install --force-reinstall . (from an edgebit checkout, with "
                                                 "cmake and g++ installed: it builds runtime_ops/)")


def _kernel_variant() -> Check:
    from edgebit.errors import EdgebitError
    from edgebit.ops import native

    try:
        chosen, runnable = native.variant(), native.runnable_variants()
    except EdgebitError as e:
        return Check("kernels", "kernel variant for this CPU", False, str(e),
                     "pip install --force-reinstall . (it builds the kernels)")
    return Check("kernels", "kernel variant for this CPU", True,
                 f"{chosen} (this CPU can also run: {', '.join(v for v in runnable if v != chosen) or 'nothing else'}; "
                 "EDGEBIT_KERNEL=<variant> forces one)")


def _ndk() -> Check:
    import os

    ndk = os.environ.get("ANDROID_NDK", "")
    ok = bool(ndk) and os.path.isfile(os.path.join(ndk, "build", "cmake", "android.toolchain.cmake"))
    return Check("bundle --target android-arm64 (a phone)", "Android NDK", ok,
                 ndk if ok else (f"ANDROID_NDK={ndk} holds no build/cmake/android.toolchain.cmake" if ndk
                                 else "ANDROID_NDK is not set"),
                 "" if ok else "install the Android NDK (Android Studio's SDK manager) and export ANDROID_NDK=<its dir>")


def checks() -> list[Check]:
    """Everything doctor looks at, in the order a user meets it."""
    from edgebit.ops import executorch_library, ort_library
    from edgebit.ops.native import library_path as kernels_path

    out = [
        _library("kernels", "libedgebit_kernels.so", kernels_path),
        _kernel_variant(),
        _library("export onnx / run / verify", "libedgebit_ort.so (ONNX Runtime op library)", ort_library.library_path),
        _library("export executorch / run / verify", "libedgebit_executorch.so (ExecuTorch kernel library)",
                 executorch_library.library_path),
        _tool("bundle --target host, profile local", "C++ compiler", "g++", f"{APT} g++"),
        _tool("bundle --target host, profile local", "CMake", "cmake", f"{APT} cmake"),
        _tool("bundle --target aarch64-linux-gnu (Raspberry Pi, arm64 boards)", "aarch64 cross compiler",
              "aarch64-linux-gnu-g++", f"{APT} g++-aarch64-linux-gnu"),
        _tool("profile --device qemu (emulated aarch64)", "qemu-aarch64", "qemu-aarch64", f"{APT} qemu-user"),
        _tool("profile --device ssh://... (a Raspberry Pi)", "ssh and scp", "scp", f"{APT} openssh-client"),
        _tool("profile --device adb (an Android phone)", "adb", "adb", f"{APT} adb"),
        _tool("scripts/emulated-pi.sh (a Debian arm64 system to ssh into)", "debootstrap", "debootstrap",
              f"{APT} debootstrap qemu-user-static binfmt-support"),
        _tool("android_demo/test-on-jvm.sh (the engine's Java API)", "JDK (javac)", "javac",
              f"{APT} default-jdk-headless"),
        _ndk(),
    ]
    for c in out:
        if c.ok and c.name in ("C++ compiler", "aarch64 cross compiler", "qemu-aarch64", "CMake"):
            c.detail = f"{c.detail} ({_version([c.detail, '--version'])})"
    return out
