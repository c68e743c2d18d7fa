"""`edgebit export onnx`: checkpoint -> artifact dir (model.onnx [+ model.onnx.data], op library, tokenizer,
genai_config.json, manifest.json), written to a temp dir and renamed only when complete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from edgebit.atomic import atomic_output_dir
from edgebit.errors import EdgebitError
from .. import register
from ..chat_template import chat_manifest_entry
from ..common import check_head, check_kv_dtype, copy_tokenizer_files, kv_cache_entry, load_for_export
from ..tokenizer_compat import tokenizer_warnings

MODEL_FILE = "model.onnx"


@register("onnx")
def export_onnx(model: Path, output: Path, max_seq_len: int | None = None, head: str = "fp32",
                ops: str = "edgebit", force: bool = False,
                on_step: Callable[[str], None] | None = None, kv_dtype: str = "float32") -> Path:
    import onnx

    from edgebit.artifact import checkpoint_fingerprint, write_manifest
    from .decoder import DecoderGraph, ExportOptions, in_place_cache
    from .genai_config import genai_config

    step = on_step or (lambda what: None)
    if ops not in ("edgebit", "standard"):
        raise EdgebitError(f"--ops: {ops!r} is not one of edgebit, standard")
    check_head(head, ops)
    library = None
    if ops == "edgebit":
        from edgebit.ops.ort_library import library_path

        library = library_path()
    step("loading checkpoint")
    weights, seq = load_for_export(model, max_seq_len)
    cfg = weights.config
    in_place = in_place_cache(ops)
    check_kv_dtype(kv_dtype, in_place, f"{model}: needs the in-place cache (edgebit's ops), and --ops standard "
                                       "keeps the fp32 Concat cache")
    with atomic_output_dir(output, force=force) as tmp:
        step("building graph")
        data = tmp / (MODEL_FILE + ".data")
        graph = DecoderGraph(weights, ExportOptions(seq, head, ops, kv_dtype), data_path=data)
        proto = graph.build()
        graph.w = weights = None  # the weights now live in the data file
        if library:
            onnx.helper.set_model_props(proto, {"edgebit.op_library": (
                f"edgebit.BitLinear nodes need {library.name} (next to this file): "
                f"onnxruntime.SessionOptions().register_custom_ops_library('{library.name}')")})
        step("writing model")
        # Weights stay in model.onnx.data whatever the model's size: ONNX Runtime maps that file (the pages are the
        # page cache's, shared and evictable) where weights inside model.onnx would be parsed into the heap and
        # then copied into tensors, two copies at load (docs/performance.md, memory).
        if graph.g.external_bytes() == 0:
            data.unlink()
        onnx.save_model(proto, tmp / MODEL_FILE)
        del proto
        onnx.checker.check_model(str(tmp / MODEL_FILE))
        if library:
            shutil.copy2(library, tmp / library.name)
        copy_tokenizer_files(model, tmp)
        (tmp / "genai_config.json").write_text(
            json.dumps(genai_config(cfg, seq, MODEL_FILE, library.name if library else None, in_place=in_place),
                       indent=2) + "\n")
        step("hashing")
        write_manifest(tmp, {
            "target": "onnx",
            "model_file": MODEL_FILE,
            "ops": ops,
            "op_library": library.name if library else None,
            "op_domain": "edgebit" if library else None,
            "op_names": ["BitLinear"] if library else ["MatMulNBits"],
            "op_abi": "onnxruntime-custom-op-api-21" if library else None,
            "head": head,
            "max_seq_len": seq,
            # How the graph takes its cache (exporters/onnx/decoder.py): "in-place", one buffer bound as past and
            # present; "concat", a past of P positions in and a new present of P+T out. An fp16 cache rounds the
            # keys and values only ("rounds": "kv"; before, GroupQueryAttention in fp16 rounded q and its output too).
            # An int8 one holds rows of D codes and a float32 scale (edgebit/quant/kv_int8.py).
            "kv_cache": kv_cache_entry("in-place" if in_place else "concat", kv_dtype),
            "config": cfg.to_dict(),
            "chat": chat_manifest_entry(Path(model), list(cfg.eos_token_ids)),
            "source": checkpoint_fingerprint(Path(model)),
            "tokenizer_warnings": tokenizer_warnings(Path(model)),
        })
    return output
