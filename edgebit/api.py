"""edgebit as a library: what the `edgebit` command does, as typed functions. The CLI (edgebit/cli/) is a thin
layer over these. Importing this module imports nothing heavy (no torch, onnx or executorch): each function
imports what it needs when it is called.

    import edgebit
    art = edgebit.export_onnx(None, "art")            # None: the model edgebit ships
    report = edgebit.verify(art)
    print(edgebit.run(art, "And God said", max_new_tokens=20).text)

Errors a caller can act on are edgebit.errors.EdgebitError (the CLI prints them as one line, exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:  # for type checkers only: none of these is imported at run time here
    from edgebit.generate import Sampling
    from edgebit.model.summary import Summary
    from edgebit.plausibility import Plausibility
    from edgebit.profile.bundle import Bundle
    from edgebit.profile.run import ProfileSpec
    from edgebit.soak import SoakLimits, SoakResult
    from edgebit.verify import VerifyReport


class Head(str, Enum):
    """Precision of the embedding and LM head in an artifact."""
    FP32 = "fp32"
    INT8 = "int8"  # per-row symmetric int8
    Q4 = "q4"  # 4-bit in groups of 32 with 8-bit group scales and one fp32 per row (edgebit's QLinear op)


class OnnxOps(str, Enum):
    """How an ONNX artifact computes its ternary linears."""
    EDGEBIT = "edgebit"  # edgebit.BitLinear nodes, run by libedgebit_ort.so
    STANDARD = "standard"  # ONNX Runtime's own MatMulNBits (bits=2): the stock baseline, no library


class KvCache(str, Enum):
    """An artifact's KV cache element type (float16 and int8 with edgebit's ops only: their in-place cache)."""
    FLOAT32 = "float32"
    FLOAT16 = "float16"  # half the cache's bytes; edgebit.Attention in fp32 over fp16 keys and values
    INT8 = "int8"  # rows of int8 codes and a float32 scale: 52% of fp16's bytes at head dim 128 (long contexts)


class PteOps(str, Enum):
    """How an ExecuTorch program computes its ternary linears."""
    EDGEBIT = "edgebit"  # edgebit::bitlinear calls, run by libedgebit_executorch.so
    TORCHAO_8DA4W = "torchao-8da4w"  # ExecuTorch's stock low-bit path on XNNPACK: the baseline


class GgufType(str, Enum):
    """The ternary block type of an exported GGUF file (llama.cpp's)."""
    TQ2_0 = "tq2_0"  # 2.0625 bits a weight
    TQ1_0 = "tq1_0"  # 1.6875 bits a weight


class Target(str, Enum):
    """What a device bundle is built for."""
    HOST = "host"
    AARCH64_LINUX_GNU = "aarch64-linux-gnu"  # a Raspberry Pi / any arm64 Linux board
    ANDROID_ARM64 = "android-arm64"  # needs ANDROID_NDK and EDGEBIT_ORT_ANDROID_DIR


class Runtime(str, Enum):
    ONNXRUNTIME = "onnxruntime"
    EXECUTORCH = "executorch"


def _kv_dtype(kv_cache, edgebit_ops: bool) -> str:
    """The chosen cache type; by default (None) float16 with edgebit's ops (their attention widens it exactly:
    half the cache's bytes, faster at long contexts, docs/performance.md), float32 with stock ones (their only one)."""
    if kv_cache is None:
        return KvCache.FLOAT16.value if edgebit_ops else KvCache.FLOAT32.value
    return _choice(KvCache, kv_cache, "--kv-cache").value


def _choice(kind: type[Enum], value, option: str):
    """value as a member of enum `kind`, or an EdgebitError naming the option and the choices."""
    try:
        return kind(value)
    except ValueError:
        from edgebit.errors import EdgebitError

        raise EdgebitError(f"{option}: {value!r} is not one of {', '.join(m.value for m in kind)}") from None


def resolve_model(model: str | Path | None = None, revision: str | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Path:
    """The checkpoint directory MODEL names: a local path as given, a Hugging Face id ORG/NAME through the local
    cache (downloading only the files edgebit reads; on_progress(done, total) in bytes), a shipped model by its
    name (bitnet-kjv-small, bitnet-kjv-small-binary; a path of that name wins), or the shipped model when MODEL
    is None. A str may be a Hub id; a Path is always a local path (so a resolved MODEL passed on is
    never looked up again, and a missing ./org/name is reported missing, not fetched)."""
    from edgebit.errors import EdgebitError

    if model is None:
        if revision is not None:
            raise EdgebitError("--revision: give MODEL as a Hugging Face Hub id (ORG/NAME); the shipped model has none")
        from edgebit.model.shipped import default_model_path

        return default_model_path()
    from edgebit.model.hub import resolve_checkpoint
    from edgebit.model.shipped import shipped_model_path

    if isinstance(model, Path) and not model.exists():
        return model  # the loader reports it missing, naming it
    if isinstance(model, str) and not Path(model).exists() and shipped_model_path(model):
        return shipped_model_path(model)
    return resolve_checkpoint(model, revision, on_progress)


@dataclass
class Inspection:
    summary: "Summary"  # shapes, parameter counts, zero fractions, sizes, bytes per decoded token
    plausibility: "Plausibility | None"  # with check=True: perplexity against chance and inverted scales


def inspect(model: str | Path | None = None, *, revision: str | None = None, check: bool = False,
            on_layer: Callable[[int, int], None] | None = None) -> Inspection:
    """Read a checkpoint's config and ternary codes (nothing packed): family, quantization scheme, shapes,
    transformers' parameter count, zero fractions, sizes; on_layer(done, layers) as it goes. check=True also runs
    the model on a short shipped text (edgebit.plausibility)."""
    from edgebit.model.checkpoint import open_checkpoint
    from edgebit.model.summary import summarize

    path = resolve_model(model, revision)
    with open_checkpoint(path) as ckpt:
        layers = ckpt.config.num_layers
        summary = summarize(ckpt, on_layer=(lambda i: on_layer(i + 1, layers)) if on_layer else None)
    return Inspection(summary, check_plausibility(path) if check else None)


def check_plausibility(model: str | Path | None = None, *, revision: str | None = None) -> "Plausibility":
    """Whether the checkpoint, as edgebit reads it, predicts a short shipped text better than chance and better
    than with every weight_scale inverted (a misread scale convention): edgebit.plausibility."""
    from edgebit.plausibility import check_checkpoint

    return check_checkpoint(resolve_model(model, revision))


def export_onnx(model: str | Path | None, output: str | Path, *, revision: str | None = None,
                max_seq_len: int | None = None, head: Head | str = Head.FP32, ops: OnnxOps | str = OnnxOps.EDGEBIT,
                force: bool = False, on_step: Callable[[str], None] | None = None,
                kv_cache: KvCache | str | None = None) -> Path:
    """An ONNX artifact dir (model.onnx, op library, tokenizer, genai_config.json, manifest.json), written
    atomically. Every ternary linear is one edgebit.BitLinear node (or MatMulNBits with ops=STANDARD). kv_cache:
    default float16 with edgebit's ops, float32 with STANDARD."""
    from edgebit.exporters import targets

    ops = _choice(OnnxOps, ops, "--ops")
    return targets()["onnx"](resolve_model(model, revision), Path(output), max_seq_len,
                             _choice(Head, head, "--head").value, ops.value, force, on_step=on_step,
                             kv_dtype=_kv_dtype(kv_cache, ops is OnnxOps.EDGEBIT))


def export_executorch(model: str | Path | None, output: str | Path, *, revision: str | None = None,
                      max_seq_len: int | None = None, head: Head | str = Head.FP32, xnnpack: bool = True,
                      ops: PteOps | str = PteOps.EDGEBIT, force: bool = False,
                      on_step: Callable[[str], None] | None = None, kv_cache: KvCache | str | None = None) -> Path:
    """An ExecuTorch artifact dir (program.pte, kernel library, tokenizer, manifest.json), written atomically.
    Every ternary linear is one edgebit::bitlinear call; xnnpack delegates the head and attention products.
    kv_cache: default float16 with edgebit's ops, float32 with TORCHAO_8DA4W."""
    from edgebit.errors import EdgebitError
    from edgebit.exporters import targets

    ops = _choice(PteOps, ops, "--ops")
    if ops is PteOps.TORCHAO_8DA4W and not xnnpack:
        raise EdgebitError("--ops: torchao-8da4w runs on XNNPACK; drop --no-xnnpack")
    return targets()["executorch"](resolve_model(model, revision), Path(output), max_seq_len,
                                   _choice(Head, head, "--head").value,
                                   xnnpack, force, on_step=on_step, ops=ops.value,
                                   kv_dtype=_kv_dtype(kv_cache, ops is PteOps.EDGEBIT))


def export_gguf(model: str | Path | None, output: str | Path, *, revision: str | None = None,
                qtype: GgufType | str = GgufType.TQ2_0, force: bool = False,
                on_step: Callable[[str], None] | None = None) -> Path:
    """One GGUF file for llama.cpp (architecture bitnet or llama; ternary linears bit-exact; tokenizer and chat
    template carried: docs/weight-layout.md, "GGUF"), written to a temp name and renamed when complete."""
    from edgebit.exporters import targets

    return targets()["gguf"](resolve_model(model, revision), Path(output), _choice(GgufType, qtype, "--type").value,
                             force, on_step=on_step)


def verify(artifact: str | Path, *, model: str | Path | None = None, revision: str | None = None,
           threads: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> "VerifyReport":
    """Hold an artifact to the reference model (docs/verify.md): logits position by position, top-1 agreement,
    perplexity, and whether the source model predicts text at all. `report.passed` is the verdict. model: the
    source checkpoint (default: the one the manifest records, a Hub source found again at its commit)."""
    from edgebit.verify import source_checkpoint, verify as run_verify

    source = source_checkpoint(Path(artifact), model, revision, on_progress)
    return run_verify(Path(artifact), source, threads)


@dataclass
class RunResult:
    prompt_ids: list[int]
    generated_ids: list[int]
    text: str | None  # None when the artifact has no tokenizer.json
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    backend: str
    etdump: Path | None = None  # with etdump=: where the ETDump was written
    ops: list[dict] | None = None  # with etdump=: ExecuTorch Inspector's per-operator times over the run


def run(artifact: str | Path, prompt: str | None = None, *, prompt_ids: Sequence[int] | None = None,
        max_new_tokens: int = 64, sampling: "Sampling | None" = None, threads: int | None = None,
        on_text: Callable[[str], None] | None = None, etdump: str | Path | None = None) -> RunResult:
    """Generate from an artifact in its runtime (greedy unless `sampling` says otherwise), from text (tokenized
    with the artifact's tokenizer.json) or ids; on_text receives the text as it streams (whole characters).
    etdump (ExecuTorch artifacts): record an ETDump of the run there and return the per-operator table."""
    from edgebit.artifact import read_manifest
    from edgebit.backends import open_backend
    from edgebit.errors import EdgebitError
    from edgebit.generate import Sampling, generate
    from edgebit.tokenizer import TextStream, load_tokenizer

    artifact = Path(artifact)
    if (prompt is None) == (prompt_ids is None):
        raise EdgebitError("--prompt: give exactly one of --prompt and --prompt-ids")
    manifest = read_manifest(artifact)
    if etdump is not None and manifest.get("target") != "executorch":
        raise EdgebitError(f"--profile: profiling is for ExecuTorch (.pte) artifacts; {artifact} targets "
                           f"{manifest.get('target')}")
    backend = open_backend(artifact, threads, profile=etdump is not None)
    tokenizer = load_tokenizer(artifact) if prompt is not None or (artifact / "tokenizer.json").is_file() else None
    ids = tokenizer.encode(prompt).ids if prompt is not None else [int(i) for i in prompt_ids]
    if not ids or min(ids) < 0 or max(ids) >= backend.vocab_size:
        raise EdgebitError(f"--prompt-ids: token ids must lie in the vocabulary (0..{backend.vocab_size - 1})")
    room = backend.max_seq_len - len(ids)
    if room < 1:
        raise EdgebitError(f"--prompt: the prompt has {len(ids)} tokens; the artifact serves {backend.max_seq_len}")
    stream = TextStream(tokenizer) if tokenizer is not None and on_text is not None else None
    show = (lambda token: on_text(stream.push(token))) if stream is not None else None
    stop = tuple(manifest["config"].get("eos_token_ids", []))
    result = generate(backend, ids, min(max_new_tokens, room), sampling or Sampling(), stop, show)
    if stream is not None:
        on_text(stream.flush())
    text = tokenizer.decode(result.generated_ids, skip_special_tokens=True) if tokenizer else None
    ops = None
    if etdump is not None:
        from edgebit.backends.executorch import op_profile

        etdump = backend.write_etdump(Path(etdump).resolve())
        ops = op_profile(etdump)
    return RunResult(result.prompt_ids, result.generated_ids, text, result.prefill_tokens_per_s,
                     result.decode_tokens_per_s, backend.name, etdump, ops)


def profile(artifacts: Sequence[str | Path], device: str = "local", spec: "ProfileSpec | None" = None, *,
            log: Callable[[str], None] | None = None, connect_timeout: float = 10, ssh_config: Path | None = None,
            accept_new_host_key: bool = False) -> list[dict]:
    """Latency and memory of each artifact measured on a device by the native runner: device is "local",
    "qemu[:CPU]", "ssh://user@host[:port]" or "adb[:serial]". One result dict per (artifact, thread count)."""
    from edgebit.profile.run import ProfileSpec, profile as run_profile

    return run_profile([Path(a) for a in artifacts], device, spec or ProfileSpec(), log=log,
                       connect_timeout=connect_timeout, ssh_config=ssh_config,
                       accept_new_host_key=accept_new_host_key)


def soak(artifact: str | Path, minutes: float, *, threads: int = 1, limits: "SoakLimits | None" = None,
         on_cycle: Callable[[dict], None] | None = None, log: Callable[[str], None] | None = None) -> "SoakResult":
    """Chat with the native runner for `minutes` (conversations until the context is full, sampled and greedy
    turns, cancels, resets) and judge RSS and decode-speed drift after a warm-up (edgebit.soak)."""
    from edgebit.soak import SoakLimits, soak as run_soak

    return run_soak(artifact, minutes, threads, limits or SoakLimits(), on_cycle or (lambda line: None), log=log)


def bundle(output: str | Path, target: Target | str = Target.HOST, *,
           runtimes: Sequence[Runtime | str] = (Runtime.ONNXRUNTIME, Runtime.EXECUTORCH), force: bool = False,
           log: Callable[[str], None] | None = None) -> "Bundle":
    """A device bundle dir: bin/edgebit-runner and lib/ (engine, op libraries, the target's runtimes)."""
    from edgebit.profile.bundle import write_bundle

    return write_bundle(_choice(Target, target, "--target").value, Path(output), force=force, log=log,
                        runtimes=tuple(_choice(Runtime, r, "--runtime").value for r in runtimes))


__all__ = ["Head", "OnnxOps", "PteOps", "Target", "Runtime", "Inspection", "RunResult", "resolve_model", "inspect",
           "check_plausibility", "export_onnx", "export_executorch", "verify", "run", "profile", "soak", "bundle", "quickstart", "doctor"]


def quickstart(output: str | Path, model: str | Path | None = None, *, force: bool = False, on_step=None,
               on_progress=None):
    """The whole mission on MODEL (default: the shipped model): export ONNX and .pte, verify both, text from the
    native runner, profile locally and on emulated aarch64, JSON + HTML report (edgebit.quickstart)."""
    from edgebit.quickstart import quickstart as run_quickstart

    return run_quickstart(output, model, force=force, on_step=on_step or (lambda step: None),
                          on_progress=on_progress or (lambda what: None))


def doctor() -> list:
    """What this machine can do and lacks for each thing edgebit does (edgebit.doctor.Check: area, name, ok,
    detail, fix)."""
    from edgebit.doctor import checks

    return checks()
