"""The app's native build (android_demo/engine/src/main/cpp/CMakeLists.txt, which Gradle runs through the NDK) run
with this machine's compilers standing in for the NDK (no NDK is reachable here): it unpacks ONNX Runtime from an
AAR-shaped zip (headers/ and jni/<ABI>/libonnxruntime.so, made from the headers and library edgebit builds with),
builds the engine, the op library and the JNI bridge from the repository's sources, and the bridge exports only
JNI_OnLoad."""

import os
import subprocess
import zipfile
from pathlib import Path

CPP_DIR = Path(__file__).resolve().parents[2] / "android_demo" / "engine" / "src" / "main" / "cpp"
TARGETS = ("edgebit_jni", "edgebit_engine", "edgebit_ort")


def test_android_cmakelists_builds_with_the_host_toolchain(tmp_path, require):
    for tool in ("cmake", "g++", "nm"):
        require(tool, "the host toolchain stands in for the NDK")
    jdk_include = Path(os.path.realpath(require("javac", "its JDK has jni.h"))).parents[1] / "include"
    from edgebit.profile.bundle import host_target, ort_headers, ort_library

    aar = tmp_path / "onnxruntime-android-standin.aar"
    with zipfile.ZipFile(aar, "w") as z:
        for header in ort_headers().glob("*.h"):
            z.write(header, f"headers/{header.name}")
        z.write(ort_library(host_target()), "jni/x86_64/libonnxruntime.so")
    build = tmp_path / "build"
    # Only what Gradle passes decides the build: no ONNX Runtime or ExecuTorch dirs from the environment.
    env = {k: v for k, v in os.environ.items()
           if k not in ("EDGEBIT_ORT_INCLUDE_DIR", "EDGEBIT_REQUIRE_ORT", "EDGEBIT_EXECUTORCH_DIR",
                        "EDGEBIT_REQUIRE_EXECUTORCH")}
    for cmd in (["cmake", "-S", CPP_DIR, "-B", build, "-DANDROID_ABI=x86_64", f"-DEDGEBIT_ORT_AAR={aar}",
                 "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_FLAGS=-I{jdk_include} -I{jdk_include / 'linux'}"],
                ["cmake", "--build", build, "--target", *TARGETS, "-j", "2"]):
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=1200)
        assert proc.returncode == 0, f"{' '.join(map(str, cmd[:2]))} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"

    libs = {t: next(build.rglob(f"lib{t}.so"), None) for t in TARGETS}
    assert all(libs.values()), libs
    assert (build / "onnxruntime-android" / "headers" / "onnxruntime_c_api.h").is_file()
    nm = subprocess.run(["nm", "-D", "--defined-only", libs["edgebit_jni"]], capture_output=True, text=True,
                        check=True).stdout
    # Functions and data the library exports (g++'s "u" unique objects of inlined libstdc++ code are not the bridge's).
    exported = {line.split()[-1] for line in nm.splitlines() if line.split()[-2] in ("T", "D", "B", "R", "W", "V")}
    assert exported == {"JNI_OnLoad"}, nm
