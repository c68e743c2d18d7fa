"""Device bundles, one directory per target: bin/edgebit-runner (RUNPATH $ORIGIN/../lib) and lib/ with
libedgebit_engine.so (the engine, runtime_ops/engine, built with the bundle's runtimes) and, per runtime:
  onnxruntime: libedgebit_ort.so and libonnxruntime.so.1 from the target's onnxruntime wheel;
  executorch:  libedgebit_executorch.so and libexecutorch*.so from the target's executorch wheel.
Built from the runtime_ops sources installed with the package, with the target's toolchain file.

Built once per (target, sources, ONNX Runtime version) into ~/.cache/edgebit/bundles/; `edgebit bundle -o DIR`
copies that. bundle.json in the bundle names its target, runtime versions, content hash and, for Linux targets, what
the device must provide ("requires": the minimum glibc and the system libraries it does not carry, with the
Debian package of each; edgebit.profile.requirements)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgebit.errors import EdgebitError

TARGETS = ("host", "aarch64-linux-gnu", "android-arm64")
ORT_VERSION = "1.31.1"
RUNNER = "bin/edgebit-runner"
ENGINE = "lib/libedgebit_engine.so"
OP_LIBRARY = "libedgebit_ort.so"
ORT_SONAME = "libonnxruntime.so.1"
ET_VERSION = "1.5.1"
ET_LIBS = ("libexecutorch.so", "libexecutorch_threadpool.so", "libexecutorch_kernels_optimized.so",
           "libexecutorch_backend_xnnpack.so", "libexecutorch_etdump.so")
RUNTIMES = ("onnxruntime", "executorch")
# Part of the cache key: a bundle cached by an older edgebit lacks what this one writes into bundle.json.
BUNDLE_FORMAT = 2
# artifact target -> (runtime, runner, op library), paths inside a bundle
RUNNERS = {"onnx": ("onnxruntime", RUNNER, "lib/libedgebit_ort.so"),
           "executorch": ("executorch", RUNNER, "lib/libedgebit_executorch.so")}
WHEEL_PLATFORMS = {"aarch64-linux-gnu": "manylinux_2_28_aarch64"}


class BundleError(EdgebitError):
    """A bundle cannot be built for this target here (missing toolchain, headers, wheel or NDK)."""


@dataclass
class Bundle:
    path: Path
    target: str
    content_hash: str

    @property
    def runner(self) -> Path:
        return self.path / RUNNER


def cache_root() -> Path:
    return Path(os.environ.get("EDGEBIT_CACHE_DIR") or Path.home() / ".cache" / "edgebit")


def source_dir() -> Path:
    """runtime_ops/ as installed with the package (edgebit/native_src/), or $EDGEBIT_SOURCE_DIR's checkout."""
    if os.environ.get("EDGEBIT_SOURCE_DIR"):
        src = Path(os.environ["EDGEBIT_SOURCE_DIR"]) / "runtime_ops"
    else:
        src = Path(__file__).resolve().parent.parent / "native_src" / "runtime_ops"
    if not (src / "runner" / "CMakeLists.txt").is_file():
        raise BundleError(f"{src}: no runtime_ops sources with runner/ (reinstall edgebit with `pip install .`, "
                          "or set EDGEBIT_SOURCE_DIR to a checkout)")
    return src


def host_target() -> str:
    return f"host-{platform.machine()}"


def ort_headers() -> Path:
    """ONNX Runtime C/C++ headers: $EDGEBIT_ORT_INCLUDE_DIR, else fetched by fetch_ort_headers.sh (cached)."""
    if os.environ.get("EDGEBIT_ORT_INCLUDE_DIR"):
        return Path(os.environ["EDGEBIT_ORT_INCLUDE_DIR"])
    default = Path.home() / ".cache" / "edgebit" / "ort-headers" / "root" / "usr" / "include" / "onnxruntime"
    if (default / "onnxruntime_c_api.h").is_file():
        return default
    script = source_dir().parent / "scripts" / "fetch_ort_headers.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BundleError(f"no ONNX Runtime headers: set EDGEBIT_ORT_INCLUDE_DIR, or fix {script} ({tail[0]})")
    return Path(proc.stdout.strip())


def ort_library(target: str) -> Path:
    """libonnxruntime.so for the target: the installed wheel's for this host, else the target's wheel via pip."""
    if target == host_target():
        import onnxruntime

        found = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so.*"))
        if found:
            return found[-1]
        raise BundleError(f"{Path(onnxruntime.__file__).parent / 'capi'}: this onnxruntime wheel has no "
                          "libonnxruntime.so")
    plat = WHEEL_PLATFORMS[target]
    dest = cache_root() / "wheels" / f"onnxruntime-{ORT_VERSION}-{plat}"
    lib = dest / f"libonnxruntime.so.{ORT_VERSION}"
    if lib.is_file():
        return lib
    wheel = _download_wheel("onnxruntime", ORT_VERSION, plat)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so.")]
        if not names:
            raise BundleError(f"{wheel}: no onnxruntime/capi/libonnxruntime.so.* inside")
        (tmp / lib.name).write_bytes(z.read(names[0]))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return lib


def executorch_root(target: str) -> Path:
    """The executorch package root (include/, lib/, share/cmake/) for the target: the installed one for this host,
    else the target's wheel via pip, unpacked (those three dirs) into the cache."""
    if target == host_target():
        import importlib.util

        spec = importlib.util.find_spec("executorch")
        # executorch is a namespace package: any directory named executorch on sys.path joins it, so take the
        # portion that holds the runtime's CMake package, not the first one.
        roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
        for root in roots:
            if (root / "share" / "cmake" / "executorch-config.cmake").is_file():
                return root
        raise BundleError("the executorch package is not installed (pip install executorch==" + ET_VERSION + ")")
    plat = WHEEL_PLATFORMS[target]
    dest = cache_root() / "wheels" / f"executorch-{ET_VERSION}-{plat}"
    if (dest / "share" / "cmake" / "executorch-config.cmake").is_file():
        return dest
    wheel = _download_wheel("executorch", ET_VERSION, plat)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            rel = name.removeprefix("executorch/")
            if name.startswith("executorch/") and rel.split("/")[0] in ("include", "lib", "share") and not name.endswith("/"):
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(name))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _download_wheel(package: str, version: str, plat: str) -> Path:
    wheels = cache_root() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"{package}-{version}-*{plat}.whl"
    if not list(wheels.glob(pattern)):
        cmd = ["python3", "-m", "pip", "download", f"{package}=={version}", "--platform", plat,
               "--only-binary=:all:", "--no-deps", "-q", "-d", str(wheels)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not list(wheels.glob(pattern)):
            raise BundleError(f"pip could not download the {package} {version} wheel for {plat} "
                              f"({' '.join(cmd)}): {(proc.stderr.strip().splitlines() or [''])[-1]}")
    return sorted(wheels.glob(pattern))[-1]


def _hash_files(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _android_error() -> BundleError:
    return BundleError(
        "android-arm64 bundles need what cannot be fetched here: set ANDROID_NDK to an Android NDK (r23 or newer) "
        "and EDGEBIT_ORT_ANDROID_DIR to an unzipped ONNX Runtime Android AAR (onnxruntime-android-"
        f"{ORT_VERSION}.aar from Maven Central: its jni/arm64-v8a/libonnxruntime.so and headers/)")


def _android_inputs() -> tuple[Path, Path, Path]:
    ndk, aar = os.environ.get("ANDROID_NDK") or os.environ.get("ANDROID_NDK_HOME"), os.environ.get("EDGEBIT_ORT_ANDROID_DIR")
    if not ndk or not aar:
        raise _android_error()
    ndk_p, aar_p = Path(ndk), Path(aar)
    lib, headers = aar_p / "jni" / "arm64-v8a" / "libonnxruntime.so", aar_p / "headers"
    toolchain = ndk_p / "build" / "cmake" / "android.toolchain.cmake"
    for p in (toolchain, lib, headers / "onnxruntime_c_api.h"):
        if not p.exists():
            raise BundleError(f"{p}: missing. {_android_error()}")
    return ndk_p, lib, headers


def build_bundle(target: str, runtimes: tuple[str, ...] = RUNTIMES, jobs: int = 2, log=None,
                 sanitize: str | None = None) -> Bundle:
    """The bundle for target ('host' means this machine) with the given runtimes, built or taken from the cache.
    sanitize ("thread" or "address", this machine only): every native part built with that sanitizer, plus
    bin/edgebit-engine-stress (several engines on threads with cancels and closes; the tests run it)."""
    if target not in TARGETS and target != host_target():
        raise BundleError(f"unknown bundle target '{target}' (one of: {', '.join(TARGETS)})")
    bad = [r for r in runtimes if r not in RUNTIMES]
    if bad or not runtimes:
        raise BundleError(f"unknown runtime {bad[0] if bad else '(none)'!r} (one or more of: {', '.join(RUNTIMES)})")
    runtimes = tuple(r for r in RUNTIMES if r in runtimes)
    if target == "host":
        target = host_target()
    src = source_dir()
    cmake_args = ["-DEDGEBIT_BUILD_RUNNER=ON", "-DEDGEBIT_BUILD_TESTS=OFF", "-DCMAKE_BUILD_TYPE=Release",
                  "-DEDGEBIT_REQUIRE_EXECUTORCH=OFF"]
    if target == "android-arm64":
        if "executorch" in runtimes:
            raise BundleError("android-arm64 bundles are ONNX Runtime only for now (--runtime onnxruntime); "
                              + str(_android_error()))
        ndk, lib, headers = _android_inputs()
        cmake_args += [f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'android-arm64.cmake'}", f"-DANDROID_NDK={ndk}"]
    else:
        if target.startswith("host-") and target != host_target():
            raise BundleError(f"target {target} is neither this machine ({host_target()}) nor aarch64-linux-gnu")
        if target == "aarch64-linux-gnu":
            if not shutil.which("aarch64-linux-gnu-g++"):
                raise BundleError("aarch64-linux-gnu bundles need the cross compiler aarch64-linux-gnu-g++ "
                                  "(Debian/Ubuntu: apt install g++-aarch64-linux-gnu)")
            cmake_args += [f"-DCMAKE_TOOLCHAIN_FILE={src / 'cmake' / 'aarch64-linux-gnu.cmake'}",
                           "-DEDGEBIT_STATIC_EXE=OFF",
                           "-DCMAKE_SHARED_LINKER_FLAGS=-static-libstdc++ -static-libgcc"]
        lib, headers = ort_library(target), ort_headers()
    et_root = executorch_root(target) if "executorch" in runtimes else None
    targets = ["edgebit-runner", "edgebit_engine"]
    if sanitize:
        if sanitize not in ("thread", "address") or not target.startswith("host-"):
            raise BundleError(f"sanitizer builds are thread or address for this machine, not {sanitize!r} for {target}")
        cmake_args += [f"-DEDGEBIT_SANITIZE={sanitize}"]
        targets += ["edgebit-engine-stress"]
    cmake_args += [f"-DEDGEBIT_ENGINE_ORT={'ON' if 'onnxruntime' in runtimes else 'OFF'}",
                   f"-DEDGEBIT_ENGINE_ET={'ON' if et_root else 'OFF'}"]
    if "onnxruntime" in runtimes:
        targets += ["edgebit_ort"]
    if et_root:
        # executorch_DIR too: find_package caches it, and a stale one (another wheel) must not win.
        cmake_args += [f"-DEDGEBIT_EXECUTORCH_DIR={et_root}", f"-Dexecutorch_DIR={et_root / 'share' / 'cmake'}"]
        targets += ["edgebit_executorch"]
    if not shutil.which("cmake"):
        raise BundleError("building a bundle needs cmake (apt install cmake, or pip install cmake)")
    sources = sorted(p for p in src.rglob("*") if p.is_file() and "tests" not in p.relative_to(src).parts)
    et_libs = [et_root / "lib" / n for n in ET_LIBS] if et_root else []
    key = _hash_files(sources + [lib] + et_libs, extra=f"{target}|{' '.join(cmake_args)}|{BUNDLE_FORMAT}")[:16]
    flavour = f"{target}-{'+'.join(runtimes)}" + (f"-{sanitize}" if sanitize else "")
    out = cache_root() / "bundles" / f"{flavour}-{key}"
    if (out / "bundle.json").is_file():
        return Bundle(out, target, json.loads((out / "bundle.json").read_text())["content_hash"])
    # One build dir per source tree: two installs of edgebit on a machine must not share a CMake cache.
    where = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]
    build = cache_root() / "bundles" / f"build-{flavour}-{where}"
    cmake_args += [f"-DEDGEBIT_ORT_INCLUDE_DIR={headers}", f"-DEDGEBIT_ORT_LIBRARY={lib}"]
    if log:
        log(f"building the {target} bundle ({', '.join(runtimes)}) in {build}")
    for cmd in (["cmake", "-S", str(src), "-B", str(build), *cmake_args],
                ["cmake", "--build", str(build), "--target", *targets, "-j", str(jobs)]):
        # Only what the bundle holds is built: the ExecuTorch library's configure is never required, and the
        # ExecuTorch dir comes from the command line alone.
        env = {**os.environ, "EDGEBIT_ORT_INCLUDE_DIR": "", "EDGEBIT_REQUIRE_EXECUTORCH": "",
               "EDGEBIT_EXECUTORCH_DIR": str(et_root or "")}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            lines = [l for l in (proc.stderr + proc.stdout).splitlines() if "rror" in l] or proc.stderr.splitlines()
            raise BundleError(f"bundle build for {target} failed ({' '.join(cmd[:2])}): "
                              f"{(lines[:1] or ['see ' + str(build)])[0].strip()}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    (tmp / "lib").mkdir()
    versions = {}
    shutil.copy2(build / "runner" / "edgebit-runner", tmp / RUNNER)
    shutil.copy2(build / "engine" / "libedgebit_engine.so", tmp / ENGINE)
    if sanitize:
        shutil.copy2(build / "runner" / "edgebit-engine-stress", tmp / "bin" / "edgebit-engine-stress")
    if "onnxruntime" in runtimes:
        shutil.copy2(build / "ort" / OP_LIBRARY, tmp / "lib" / OP_LIBRARY)
        shutil.copy2(lib, tmp / "lib" / ORT_SONAME)
        versions["onnxruntime"] = ORT_VERSION
    if et_root:
        shutil.copy2(build / "executorch" / "libedgebit_executorch.so", tmp / "lib" / "libedgebit_executorch.so")
        for p in et_libs:
            shutil.copy2(p, tmp / "lib" / p.name)
        versions["executorch"] = ET_VERSION
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    info = {"target": target, "runtimes": versions, "files": [f.relative_to(tmp).as_posix() for f in files],
            "content_hash": _hash_files(files)}
    if target != "android-arm64":  # bionic: the Android version, not a glibc, is what a phone must have
        from edgebit.profile.requirements import bundle_requirements

        info["requires"] = bundle_requirements(tmp)
    (tmp / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return Bundle(out, target, info["content_hash"])


def write_bundle(target: str, output: Path, force: bool = False, log=None,
                 runtimes: tuple[str, ...] = RUNTIMES) -> Bundle:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        if not force:
            raise EdgebitError(f"{output}: exists (use --force to replace it)")
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    bundle = build_bundle(target, runtimes, log=log)
    tmp = output.with_name(output.name + ".tmp-bundle")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(bundle.path, tmp)
    if output.exists():
        output.rmdir()
    tmp.rename(output)
    return Bundle(output, bundle.target, bundle.content_hash)
