"""A GGUF file behind the same interface as a safetensors Checkpoint (edgebit/model/checkpoint.py): config,
weight_form, read(HF name), file_of, close, plus ternary_codes(HF linear name), which weights.ternary_codes
dispatches to. Opening checks the whole tensor directory against the config (names, shapes, types) before any
tensor is read; tensors are then read and converted one at a time."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import CheckpointError
from edgebit.model.config import ModelConfig
from edgebit.model.gguf import arch as A
from edgebit.model.gguf.reader import GGUFFile, TensorInfo
from edgebit.model.gguf.ternary import FLOAT_TYPES, TERNARY_TYPES, float_codes, i2s_codes, tq_codes

# Types the embedding and head may have: stored floats, or the block formats the gguf package dequantizes.
TABLE_TYPES = FLOAT_TYPES + ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
TORCH_FLOAT = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


class GgufCheckpoint:
    weight_form = "gguf"

    def __init__(self, path: Path):
        self.path = Path(path).resolve()  # through edgebit's view symlink: messages name the user's file
        self.file = GGUFFile(self.path)
        try:
            factors = None
            if A.ROPE_FREQS in self.file.tensors:
                factors = self._floats(A.ROPE_FREQS, self.file.tensors[A.ROPE_FREQS]).numpy()
            self.config: ModelConfig = A.config_from_gguf(self.file, factors)
            self.raw_config = {k: v for k, v in self.file.kv.items() if isinstance(v, (int, float, str))}
            self.names = A.hf_to_gguf_names(self.config)  # HF -> GGUF
            self._check_tensors()
        except BaseException:
            self.file.close()
            raise

    # -- the Checkpoint interface --------------------------------------------------------------------------------
    def file_of(self, name: str) -> Path:
        return self.path

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "GgufCheckpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def gguf_name(self, name: str) -> str:
        if name in self.names:
            return self.names[name]
        if name.endswith(".weight") and name[: -len(".weight")] in self.names:
            return self.names[name[: -len(".weight")]] + ".weight"
        raise CheckpointError(f"{self.path}: tensor '{name}' has no GGUF counterpart in this model")

    def read(self, name: str):
        """A float tensor (norm, embedding, head) by its HF name, in its stored precision where torch has one."""
        gname = self.gguf_name(name)
        return self._floats(gname, self.file.tensors[gname])

    def ternary_codes(self, name: str):
        """(codes uint8 [N, K] = w + 1, gamma fp32 0-dim) of the linear NAME (HF name, no '.weight')."""
        import numpy as np
        import torch

        gname = self.names[name] + ".weight"
        info = self.file.tensors[gname]
        n, k = info.shape
        where = f"{self.path}: tensor '{gname}'"
        raw = self.file.read(gname)
        if info.type_name in TERNARY_TYPES:
            codes, gamma = (i2s_codes(raw, n, k, where) if info.type_name == "I2_S"
                            else tq_codes(raw, n, k, info.type_name, where))
        else:
            codes, gamma = float_codes(self._floats(gname, info).float().numpy(), where, info.type_name)
        del raw
        scale_name = self.names[name] + ".scale"
        if scale_name in self.file.tensors:
            scale = float(self._floats(scale_name, self.file.tensors[scale_name]).reshape(-1)[0])
            if not np.isfinite(scale) or scale <= 0:
                raise CheckpointError(f"{self.path}: tensor '{scale_name}': expected a positive finite scale, "
                                      f"got {scale}")
            gamma = np.float32(gamma) * np.float32(scale)  # llama.cpp: (x . W * d) * scale, in fp32
        heads = A.qk_heads(self.config, name) if A.ARCHS[self.file.kv["general.architecture"]].permuted_qk else None
        if heads is not None:
            codes = np.ascontiguousarray(A.permute_rows(codes, heads, undo=True))
        return torch.from_numpy(codes), torch.tensor(float(gamma), dtype=torch.float32)

    # -- reading ---------------------------------------------------------------------------------------------------
    def _floats(self, gname: str, info: TensorInfo):
        import torch

        raw = self.file.read(gname)
        if info.type_name in TORCH_FLOAT:
            return torch.from_numpy(raw).view(getattr(torch, TORCH_FLOAT[info.type_name])).reshape(info.shape)
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        rows = raw.reshape(info.numel // info.ne[0], -1)
        values = dequantize(rows, GGMLQuantizationType(info.ggml_type))  # float32 [rows, ne0]
        del raw, rows
        return torch.from_numpy(values.reshape(info.shape))

    def _check_tensors(self) -> None:
        cfg, t = self.config, self.file.tensors
        want: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        for hf, g in self.names.items():
            if g in ("token_embd.weight", "output.weight"):
                want[g] = (TABLE_TYPES, (cfg.hidden_size, cfg.vocab_size))
            elif hf.endswith(".weight"):
                want[g] = (FLOAT_TYPES, (_norm_size(cfg, g),))
            else:
                out_f, in_f = cfg.linear_shapes()[hf.rsplit(".", 1)[1]]
                want[g + ".weight"] = (TERNARY_TYPES + FLOAT_TYPES, (in_f, out_f))
                if g + ".scale" in t:
                    want[g + ".scale"] = (("F32",), (1,))
        if A.ROPE_FREQS in t:
            want[A.ROPE_FREQS] = (("F32",), (cfg.head_dim // 2,))
        for g, (types, ne) in want.items():
            info = t.get(g)
            if info is None:
                raise CheckpointError(f"{self.path}: tensor '{g}' is missing ({self.file.kv['general.architecture']}, "
                                      f"{cfg.num_layers} layers)")
            if info.type_name not in types or info.ne != ne:
                raise CheckpointError(f"{self.path}: tensor '{g}': expected {'|'.join(types)}{list(ne)} (ggml "
                                      f"order), got {info.type_name}{list(info.ne)}")
        for g in t:
            if g not in want:
                arch = self.file.kv["general.architecture"]
                raise CheckpointError(f"{self.path}: unexpected tensor '{g}' for a {arch} model with "
                                      f"{cfg.num_layers} layers")


def _norm_size(cfg: ModelConfig, gname: str) -> int:
    if gname.endswith("attn_sub_norm.weight"):
        return cfg.q_size
    if gname.endswith("ffn_sub_norm.weight"):
        return cfg.intermediate_size
    return cfg.hidden_size
