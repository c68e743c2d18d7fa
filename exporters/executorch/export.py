"""`edgebit export executorch`: checkpoint -> artifact dir (program.pte, libedgebit_executorch.so, tokenizer,
manifest.json), written to a temp dir and renamed only when complete."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from edgebit.atomic import atomic_output_dir
from edgebit.errors import EdgebitError
from edgebit.third_party_noise import python_noise_silenced
from .. import register
from ..chat_template import chat_manifest_entry
from ..common import check_head, check_kv_dtype, copy_tokenizer_files, kv_cache_entry, load_for_export
from ..tokenizer_compat import tokenizer_warnings

MODEL_FILE = "program.pte"


def constant_methods(cfg, seq: int) -> dict:
    """What ExecuTorch's LLM runner reads from the program (DESIGN.md 7)."""
    methods = {
        "get_max_seq_len": seq,
        "get_max_context_len": seq,
        "use_kv_cache": True,
        "enable_dynamic_shape": True,  # the whole prompt in one forward call
        "get_vocab_size": cfg.vocab_size,
        "get_eos_ids": list(cfg.eos_token_ids),
    }
    if cfg.bos_token_id is not None:
        methods["get_bos_id"] = cfg.bos_token_id
    return methods


OPS = ("edgebit", "torchao-8da4w")


def _decoder(weights, seq: int, head: str, xnnpack: bool, ops: str, kv_dtype: str = "float32"):
    from .decoder import Decoder

    if ops == "edgebit":
        return Decoder(weights, seq, head, kv_dtype=kv_dtype)
    from .torchao_baseline import TorchaoLinear, int8_head

    # The baseline quantizes its head with torchao too; its embedding stays fp32.
    head_linear = int8_head(weights.head) if head == "int8" else None
    return Decoder(weights, seq, "fp32", linear=TorchaoLinear, head_linear=head_linear, in_place_cache=False)


def export_program(weights, seq: int, head: str, xnnpack: bool, step: Callable[[str], None], ops: str = "edgebit",
                   kv_dtype: str = "float32"):
    """ModelWeights -> ExecutorchProgramManager. Our op stays a CPU kernel call (edgebit::bitlinear.out);
    with xnnpack the head and the attention products go to the XNNPACK delegate (XNNPACK_CONFIGS). ops
    "torchao-8da4w" builds ExecuTorch's stock low-bit baseline instead (torchao_baseline.py), all on XNNPACK."""
    with python_noise_silenced(mutated_buffers_ok=ops == "edgebit"):
        return _export_program(weights, seq, head, xnnpack, step, ops, kv_dtype)


def _export_program(weights, seq: int, head: str, xnnpack: bool, step: Callable[[str], None], ops: str,
                    kv_dtype: str):
    import torch
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge, to_edge_transform_and_lower
    from executorch.exir.passes import MemoryPlanningPass

    step("building the module" + (" (torchao 8da4w)" if ops != "edgebit" else ""))
    module = _decoder(weights, seq, head, xnnpack, ops, kv_dtype).eval()
    t = torch.export.Dim("seq", min=1, max=seq)
    example = (torch.zeros(1, 3, dtype=torch.long), torch.arange(3))
    shapes = ({1: t}, {0: t})
    step("torch.export")
    with torch.no_grad():
        ep = torch.export.export(module, example, dynamic_shapes=shapes, strict=False)
        del module
    step("to_edge" + (" + XNNPACK" if xnnpack else ""))
    methods = constant_methods(weights.config, seq)
    config = EdgeCompileConfig(_check_ir_validity=False)
    if xnnpack:
        # The baseline has no op of ours between its float regions: XNNPACK takes all of it.
        partitioner = xnnpack_partitioner() if ops == "edgebit" else xnnpack_partitioner(all_ops=True)
        edge = to_edge_transform_and_lower(ep, partitioner=[partitioner], compile_config=config,
                                           constant_methods=methods)
    else:
        edge = to_edge(ep, compile_config=config, constant_methods=methods)
    del ep
    step("to_executorch")
    # Not run_reinplace_pass: with ExecuTorch 1.5.1 it gave wrong logits (max diff 1.4, top-1 0%) on the tiny test
    # programs. The cache is written in place by edgebit::cache_write instead (decoder.py).
    return edge.to_executorch(ExecutorchBackendConfig(
        memory_planning_pass=MemoryPlanningPass(alloc_graph_input=True, alloc_graph_output=True)))


# What XNNPACK takes: an fp32 head (a quantized one is edgebit::qlinear, ours) and the attention products. Given
# every float op it cut each layer into ~15 partitions between our op's calls, and ExecuTorch copies the whole
# graph once per partition: that was most of a 2B4T export's 11+ minutes and 8+ GB. The elementwise ops left to
# ExecuTorch's CPU kernels (norms, RoPE, ReLU^2, masking) are small next to the weights a token reads.
XNNPACK_CONFIGS = ("LinearConfig", "BMMConfig", "SoftmaxConfig")


def xnnpack_partitioner(all_ops: bool = False):
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    if all_ops:
        return XnnpackPartitioner()
    return XnnpackPartitioner(configs=[c for c in ALL_PARTITIONER_CONFIGS if c.__name__ in XNNPACK_CONFIGS])


@register("executorch")
def export_executorch(model: Path, output: Path, max_seq_len: int | None = None, head: str = "fp32",
                      xnnpack: bool = True, force: bool = False,
                      on_step: Callable[[str], None] | None = None, ops: str = "edgebit",
                      kv_dtype: str = "float32") -> Path:
    from edgebit.artifact import checkpoint_fingerprint, write_manifest
    from edgebit.ops.executorch_library import library_path

    step = on_step or (lambda what: None)
    if ops not in OPS or (ops != "edgebit" and not xnnpack):
        raise EdgebitError(f"--ops: {ops!r} is not one of {', '.join(OPS)} (torchao-8da4w needs XNNPACK)")
    check_head(head, ops)
    check_kv_dtype(kv_dtype, ops == "edgebit", f"{model}: needs edgebit's ops (the cache written by "
                                               f"edgebit::cache_write); --ops {ops} keeps the stock fp32 cache")
    library = library_path() if ops == "edgebit" else None
    step("loading checkpoint")
    weights, seq = load_for_export(model, max_seq_len)
    cfg = weights.config
    if ops != "edgebit":
        from .torchao_baseline import check_widths

        check_widths(cfg)
    with atomic_output_dir(output, force=force) as tmp:
        program = export_program(weights, seq, head, xnnpack, step, ops, kv_dtype)
        op_names = _edgebit_ops(program) if library else []
        del weights
        step("writing program")
        with open(tmp / MODEL_FILE, "wb") as f:
            program.write_to_file(f)
        del program
        if library:
            shutil.copy2(library, tmp / library.name)
        copy_tokenizer_files(model, tmp)
        step("hashing")
        write_manifest(tmp, {
            "target": "executorch",
            "model_file": MODEL_FILE,
            "ops": ops,
            "op_library": library.name if library else None,
            "op_domain": "edgebit" if library else None,
            "op_names": op_names,
            "op_abi": "executorch-" + _executorch_version(),
            "xnnpack": xnnpack,
            "head": head,
            "logits": "last",  # forward returns the last position's logits only (exporters/executorch/decoder.py)
            # edgebit's ops write the cache in place (edgebit::cache_write); an fp16 one rounds keys and values
            **({"kv_cache": kv_cache_entry("in-place", kv_dtype)} if library else {}),
            "max_seq_len": seq,
            "constant_methods": constant_methods(cfg, seq),
            "config": cfg.to_dict(),
            "chat": chat_manifest_entry(Path(model), list(cfg.eos_token_ids)),
            "source": checkpoint_fingerprint(Path(model)),
            "tokenizer_warnings": tokenizer_warnings(Path(model)),
        })
    return output


def _edgebit_ops(program) -> list[str]:
    """The kernels of edgebit's library the program calls, in the order its execution plan first names them
    (e.g. edgebit::rms_bitlinear.out): what a runner must have registered before loading it."""
    names: list[str] = []
    for plan in program.executorch_program.execution_plan:
        for op in plan.operators:
            name = f"{op.name}.{op.overload}" if op.overload else op.name
            if op.name.startswith("edgebit::") and name not in names:
                names.append(name)
    return names


def _executorch_version() -> str:
    from importlib.metadata import version

    return version("executorch")
