"""`edgebit profile`: push the target's bundle and the artifacts to a device, run the bundle's edgebit-runner (the
engine: ONNX Runtime for ONNX artifacts, ExecuTorch for .pte) in benchmark mode once per thread count, and collect
the JSON objects, each tagged with where it ran."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgebit.errors import EdgebitError
from edgebit.profile.bundle import RUNNERS, RUNTIMES, build_bundle
from edgebit.profile.requirements import check_output, check_script, loader_message
from edgebit.profile.transports import DeviceError, Transport, open_transport


@dataclass
class ProfileSpec:
    threads: list[int] = field(default_factory=lambda: [0])  # 0: the runtime's default
    prompt_len: int = 32
    gen_len: int = 32
    runs: int = 3
    warmup: int = 1
    seed: int = 0
    prompt_ids: list[int] | None = None
    timeout: float = 600
    ort_profile_dir: Path | None = None
    max_memory_mb: int | None = None  # the runner refuses to open an artifact estimated to need more


def exit_description(code: int) -> str:
    """'exit 2', or the signal that killed the runner: negative codes from a local subprocess, 128+N from the
    device's shell over ssh/adb."""
    import signal

    sig = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0
    if sig:
        try:
            return f"killed by {signal.Signals(sig).name}, exit {code}: a crash or a device limit"
        except ValueError:
            pass
    return f"exit {code}"


def artifact_hash(artifact: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in artifact.iterdir() if q.is_file()):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def check_artifact(artifact: Path) -> dict:
    """The artifact's manifest, after the same checks `verify` and `run` make (layout version, every file
    present with the sha256 it was exported with): a broken artifact fails here, not on the device."""
    from edgebit.artifact import read_manifest

    manifest = read_manifest(artifact)
    target = manifest.get("target")
    if target not in RUNNERS:
        raise EdgebitError(f"{artifact}: a '{target}' artifact; edgebit-runner profiles "
                           f"{' and '.join(RUNNERS)} artifacts")
    model = artifact / str(manifest.get("model_file", ""))
    if not model.is_file():
        raise EdgebitError(f"{model}: missing (manifest.json names it as model_file)")
    return manifest


def check_device(transport: Transport, requires: dict, target: str) -> None:
    """The device has the glibc and the system libraries the bundle needs (bundle.json's "requires"), asked
    before anything is pushed; DeviceError naming what to install or upgrade there otherwise."""
    r = transport.run(["sh", "-c", check_script(requires, target)], 120)
    if r.returncode != 0:
        raise DeviceError(f"{transport.name}: checking the device's glibc and libraries failed: "
                          f"{(r.stderr.strip().splitlines() or ['no stderr'])[-1]}")
    lacking = check_output(transport.name, r.stdout, requires, target)
    if lacking:
        raise DeviceError(lacking)


def profile(artifacts: list[Path], device: str, spec: ProfileSpec, log=lambda msg: None, **transport_opts) -> list[dict]:
    kinds = {a: check_artifact(a)["target"] for a in artifacts}
    runtimes = tuple(sorted({RUNNERS[k][0] for k in kinds.values()}))
    transport = open_transport(device, **transport_opts)
    results = []
    try:
        transport.probe()
        # One bundle per target holds both runtimes (built once, pushed once); Android has ONNX Runtime only so far.
        bundle = build_bundle(transport.target, runtimes if transport.target == "android-arm64" else RUNTIMES, log=log)
        log(f"{transport.describe()}: bundle {bundle.target} {bundle.content_hash[:12]}")
        requires = json.loads((bundle.path / "bundle.json").read_text()).get("requires")
        if transport.remote and requires:
            check_device(transport, requires, bundle.target)
        remote_bundle = transport.push(bundle.path, bundle.content_hash)
        for artifact in artifacts:
            # On this machine (local, qemu) the artifact runs in place; elsewhere it is pushed once by content hash.
            remote_art = (transport.push(artifact, artifact_hash(artifact)) if transport.remote
                          else str(artifact.resolve()))
            _, runner, op_library = RUNNERS[kinds[artifact]]
            for threads in spec.threads:
                argv = [f"{remote_bundle}/{runner}", remote_art, "--threads", str(threads),
                        "--gen-len", str(spec.gen_len), "--runs", str(spec.runs), "--warmup", str(spec.warmup),
                        "--seed", str(spec.seed), "--op-library", f"{remote_bundle}/{op_library}",
                        # The artifact's hashes were checked here (check_artifact) and, for a pushed copy, on the
                        # device by `sha256sum -c` before this use: the engine need not hash it again, and the
                        # reported load time stays the runtime's load.
                        "--verify", "off"]
                argv += (["--prompt-ids", ",".join(map(str, spec.prompt_ids))] if spec.prompt_ids
                         else ["--prompt-len", str(spec.prompt_len)])
                if spec.max_memory_mb:
                    argv += ["--max-memory", str(spec.max_memory_mb)]
                prefix = f"{remote_bundle}.profile-{artifact.name}-t{threads}" if spec.ort_profile_dir else None
                if prefix:
                    argv += ["--profile", prefix]
                log(f"{transport.name}: {artifact.name}, {threads or 'default'} threads")
                # A run that fails or is stopped leaves no half-written profile file beside the device's bundle.
                r = transport.run(argv, spec.timeout, outputs_prefix=prefix)
                if r.returncode != 0:
                    raise DeviceError(loader_message(transport.name, r.stderr, bundle.target) or
                                      f"{transport.name}: {runner} failed ({exit_description(r.returncode)}): "
                                      f"{(r.stderr.strip().splitlines() or ['no stderr'])[-1]}")
                try:
                    obj = json.loads(r.stdout)
                except json.JSONDecodeError:
                    raise DeviceError(f"{transport.name}: edgebit-runner printed no JSON: {r.stdout[:200]!r}") from None
                obj.update(device=device, device_description=transport.describe(), emulated=transport.emulated,
                           bundle_target=bundle.target, artifact=str(artifact))
                if spec.ort_profile_dir and obj.get("profile_file"):
                    spec.ort_profile_dir.mkdir(parents=True, exist_ok=True)
                    kind = "ort-profile" if kinds[artifact] == "onnx" else "etdump"
                    ext = ".json" if kind == "ort-profile" else ".etdump"
                    local = spec.ort_profile_dir / f"{kind}-{artifact.name}-t{threads}{ext}"
                    transport.pull(obj["profile_file"], local)
                    if transport.remote:  # the device keeps the bundle and artifacts it was sent, not our outputs
                        transport.run(["rm", "-f", obj["profile_file"]], 60)
                    obj["profile_file"] = str(local)
                    if kind == "ort-profile":
                        obj["ort_profile_file"] = str(local)
                results.append(obj)
    finally:
        transport.close()
    return results
