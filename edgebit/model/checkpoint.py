"""A checkpoint directory on disk: config.json, safetensors files (single or sharded), tokenizer.json.

open_checkpoint() checks everything it can without reading tensor data: the config, that every file stays
inside the directory, and that the tensor set and every shape and dtype are what the config implies.
Tensors are then read one at a time, on demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgebit.errors import CheckpointError
from edgebit.model.config import ModelConfig, normalize_config, read_config_json
from edgebit.model.layout import layout_of
from edgebit.model.safetensors_io import SafetensorsFile, TensorInfo

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
FLOAT_DTYPES = ("F32", "F16", "BF16")
INDEX_NAME = "model.safetensors.index.json"
# Tensors some exporters leave behind that carry nothing the model needs (recomputed from the config).
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)

LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def layer_prefix(i: int) -> str:
    return f"model.layers.{i}."


def linear_shape(cfg: ModelConfig, linear: str) -> tuple[int, int]:
    return cfg.linear_shapes()[linear.split(".")[1]]


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    raw_config: dict
    # "packed" (HF uint8 [N/4, K] + weight_scale) | "unpacked" (float ternary values + weight_scale, transformers'
    # offline AutoBitLinear) | "master" (float weights, ternarized at load); config.quant says which it may be
    weight_form: str
    index: dict[str, SafetensorsFile] = field(repr=False)

    def info(self, name: str) -> TensorInfo:
        return self.index[name].tensors[name]

    def read(self, name: str):
        return self.index[name].read(name)

    def file_of(self, name: str) -> Path:
        return self.index[name].path

    def close(self) -> None:
        for f in {id(f): f for f in self.index.values()}.values():
            f.close()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _confined(root: Path, name, where: Path) -> Path:
    """A weight file named by the checkpoint must resolve (symlinks included) inside the checkpoint dir."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise CheckpointError(f"{where}: weight file {name!r} must be a relative path inside {root}")
    path = root / name
    resolved = path.resolve()
    from edgebit.model.hub import cache_blobs_dir

    blobs = cache_blobs_dir(root)  # a Hugging Face cache snapshot's files are links into its repo's blobs/
    if not resolved.is_relative_to(root.resolve()) and not (blobs and resolved.is_relative_to(blobs)):
        raise CheckpointError(f"{where}: weight file {name!r} resolves to {resolved}, outside {root}")
    return path


def _weight_files(root: Path) -> tuple[dict[str, Path], dict[Path, SafetensorsFile]]:
    """tensor name -> file path, and the opened files."""
    index_path = root / INDEX_NAME
    opened: dict[Path, SafetensorsFile] = {}

    def open_file(p: Path) -> SafetensorsFile:
        if p not in opened:
            if not p.is_file():
                raise CheckpointError(f"{p}: weight file not found")
            opened[p] = SafetensorsFile(p)
        return opened[p]

    located: dict[str, Path] = {}
    if index_path.exists():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            assert isinstance(weight_map, dict)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AssertionError):
            raise CheckpointError(f"{index_path}: expected JSON with a 'weight_map' object") from None
        for name, file_name in weight_map.items():
            path = _confined(root, file_name, index_path)
            if name not in open_file(path).tensors:
                raise CheckpointError(f"{path}: tensor '{name}' listed in {INDEX_NAME} is not in this file")
            located[name] = path
        return located, opened
    files = sorted(root.glob("*.safetensors"))
    if not files:
        pickles = sorted(p.name for p in root.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{root / pickles[0]}: pickle checkpoints are never loaded (unpickling can run code); "
                "convert the weights to safetensors"
            )
        raise CheckpointError(f"{root}: no *.safetensors weight files")
    for path in files:
        path = _confined(root, path.name, root)
        for name in open_file(path).tensors:
            if name in located:
                raise CheckpointError(f"{path}: tensor '{name}' also appears in {located[name]}")
            located[name] = path
    return located, opened


def expected_tensors(cfg: ModelConfig, form: str) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """tensor name -> (allowed dtypes, shape) for a checkpoint of this config and weight form, in the family's
    own tensor names (edgebit/model/layout.py)."""
    layout = layout_of(cfg)
    h, v = cfg.hidden_size, cfg.vocab_size
    want: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {layout.embed: (FLOAT_DTYPES, (v, h))}
    if layout.final_norm:
        want[layout.final_norm] = (FLOAT_DTYPES, (h,))
    if layout.lm_head:
        want[layout.lm_head] = (FLOAT_DTYPES, (v, h))
    for layer in layout.layers:
        for name, size in ((layer.attn_norm, h), (layer.mlp_norm, h), (layer.attn_sub_norm, cfg.q_size),
                           (layer.ffn_sub_norm, cfg.intermediate_size)):
            if name:
                want[name] = (FLOAT_DTYPES, (size,))
        for linear in layer.linears:
            n, k = linear.out_features, linear.in_features
            if form == "packed":
                if n % 4:
                    raise CheckpointError(f"{linear.name}.weight: out_features {n} is not a multiple of 4 (HF packing)")
                want[linear.name + ".weight"] = (("U8",), (n // 4, k))
            else:
                want[linear.name + ".weight"] = (FLOAT_DTYPES, (n, k))
            if form != "master":
                want[linear.name + ".weight_scale"] = (FLOAT_DTYPES, (cfg.quant.groups,))
            if cfg.quant.use_rms_norm:
                want[linear.name + ".rms_norm.weight"] = (FLOAT_DTYPES, (k,))
    return want


def _detect_form(cfg: ModelConfig, located: dict[str, Path], opened: dict[Path, SafetensorsFile], root: Path) -> str:
    """The weight form the first linear is stored in, which must be one the config's quantization scheme loads
    (as the publisher's code would): a mismatch is refused naming the key, never reinterpreted."""
    probe = layout_of(cfg).layers[0].linears[0].name + ".weight"
    if probe not in located:
        raise CheckpointError(f"{root}: tensor '{probe}' is missing")
    dtype = opened[located[probe]].tensors[probe].dtype
    allowed = cfg.quant.weight_forms
    if dtype == "U8":
        form = "packed"
    elif dtype in FLOAT_DTYPES:
        form = "unpacked" if "unpacked" in allowed else "master"
    else:
        raise CheckpointError(
            f"{located[probe]}: tensor '{probe}': dtype {dtype} is neither packed ternary (U8) nor float weights"
        )
    if form not in allowed:
        q = cfg.quant
        key = "quantization_config" if q.linear_class is None and q.weights == "ternary" else (
            "quantization_config.linear_class" if q.linear_class == "bitlinear" else "quantization_config.quantization_mode")
        stored = "packed uint8" if form == "packed" else "float"
        raise CheckpointError(
            f"{located[probe]}: tensor '{probe}' is {stored} ({dtype}), but config.json's '{key}' "
            f"({q.describe()}) loads {' or '.join(allowed)} weights; the publisher's code could not load it either"
        )
    return form


def open_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint directory, or a GGUF file (or a directory holding one and no config.json), which opens as a
    GgufCheckpoint with the same interface (edgebit/model/gguf/)."""
    root = Path(path)
    from edgebit.model.gguf import gguf_source

    gguf = gguf_source(root)
    if gguf is not None:
        from edgebit.model.gguf.checkpoint import GgufCheckpoint

        return GgufCheckpoint(gguf)
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a checkpoint directory (expected config.json + *.safetensors)")
    raw = read_config_json(root / "config.json")
    cfg = normalize_config(raw, root / "config.json")
    located, opened = _weight_files(root)
    try:
        form = _detect_form(cfg, located, opened, root)
        want = expected_tensors(cfg, form)
        for name, (dtypes, shape) in want.items():
            if name not in located:
                raise CheckpointError(f"{root}: tensor '{name}' is missing ({form} weights, {cfg.num_layers} layers)")
            info = opened[located[name]].tensors[name]
            # weight_scale may be stored as [1] or as a scalar; both hold one number.
            shape_ok = info.shape == shape or (name.endswith(".weight_scale") and info.numel == 1 == shape[0])
            if info.dtype not in dtypes or not shape_ok:
                raise CheckpointError(
                    f"{located[name]}: tensor '{name}': expected {'|'.join(dtypes)}{list(shape)}, "
                    f"got {info.dtype}{list(info.shape)}"
                )
        for name, file in located.items():
            tied_head = name == "lm_head.weight" and cfg.tie_word_embeddings
            if name not in want and not tied_head and not name.endswith(IGNORED_SUFFIXES):
                raise CheckpointError(
                    f"{file}: unexpected tensor '{name}' for a {cfg.family} model with {cfg.num_layers} layers"
                )
    except CheckpointError:
        for f in opened.values():
            f.close()
        raise
    index = {name: opened[p] for name, p in located.items()}
    return Checkpoint(root, cfg, raw, form, index)
