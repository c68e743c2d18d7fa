"""ONNX Runtime running an exported decoder, with edgebit's op library registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebit.artifact import ArtifactError, kv_cache


class OnnxRuntimeBackend:
    all_logits = True  # logits_to_keep is left at its default: every position

    def __init__(self, artifact_dir: Path, manifest: dict, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: ORT warns on every run about symbolic output dims
        library = manifest.get("op_library")
        if library:
            path = artifact_dir / library
            if not path.is_file():
                raise ArtifactError(
                    f"{path}: missing; model.onnx needs this library for its edgebit.BitLinear nodes: re-export, "
                    f"or register a build of it with SessionOptions.register_custom_ops_library('{path}')")
            from edgebit.ops.libpath import check_loadable

            check_loadable(path, "the ONNX Runtime op library")
            try:
                opts.register_custom_ops_library(str(path))
            except Exception as e:  # onnxruntime's own error for a library it cannot load or register
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ArtifactError(f"{path}: onnxruntime cannot register this op library: {first}") from None
        try:
            self.session = ort.InferenceSession(str(artifact_dir / manifest["model_file"]), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types with long messages
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"{artifact_dir / manifest['model_file']}: onnxruntime cannot load it: {first}") from None
        cfg = manifest["config"]
        self.layers, self.kv_heads, self.head_dim = cfg["num_layers"], cfg["num_kv_heads"], cfg["head_dim"]
        self.vocab_size = cfg["vocab_size"]
        self.max_seq_len = manifest["max_seq_len"]
        self.name = f"onnxruntime {ort.__version__}"
        # Artifacts that say so take their cache as one buffer updated in place (exporters/onnx/decoder.py).
        kv = kv_cache(manifest)
        self.in_place = kv["update"] == "in-place"
        self.kv_dtype = {"float16": np.float16, "int8": np.int8}.get(kv["dtype"], np.float32)
        self.kv_row = self.head_dim + 4 if kv["dtype"] == "int8" else self.head_dim  # int8: codes, then a float32 scale
        self.buffers = None
        self.reset()

    def reset(self) -> None:
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=np.float32)
        self.past = [(empty, empty) for _ in range(self.layers)]
        self.length = 0

    def forward(self, token_ids: list[int]) -> np.ndarray:
        t = len(token_ids)
        if self.length + t > self.max_seq_len:
            raise ArtifactError(f"sequence of {self.length + t} tokens exceeds the artifact's max_seq_len "
                                f"{self.max_seq_len} (export with a larger --max-seq-len)")
        feeds = {
            "input_ids": np.array([token_ids], dtype=np.int64),
            "attention_mask": np.ones((1, self.length + t), dtype=np.int64),
            "position_ids": np.arange(self.length, self.length + t, dtype=np.int64)[None, :],
        }
        logits = self.run_in_place(feeds) if self.in_place else self.run_concat(feeds)
        self.length += t
        return logits

    def run_concat(self, feeds: dict) -> np.ndarray:
        """The past [1, KVH, P, D] in, a new present [1, KVH, P+T, D] out (the standard-ops artifact's form)."""
        for i, (k, v) in enumerate(self.past):
            feeds[f"past_key_values.{i}.key"] = k
            feeds[f"past_key_values.{i}.value"] = v
        outputs = self.session.run(None, feeds)
        names = [o.name for o in self.session.get_outputs()]
        by_name = dict(zip(names, outputs))
        self.past = [(by_name[f"present.{i}.key"], by_name[f"present.{i}.value"]) for i in range(self.layers)]
        return by_name["logits"][0]

    def run_in_place(self, feeds: dict) -> np.ndarray:
        """One [1, KVH, max_seq_len, D] buffer per cache tensor, bound as both past and present: the graph's
        attention op (edgebit.Attention, or GroupQueryAttention in fp16 artifacts of earlier versions) writes the new
        positions into it (what edgebit's engine and genai's shared buffer do)."""
        import onnxruntime as ort

        if self.buffers is None:
            shape = (1, self.kv_heads, self.max_seq_len, self.kv_row)
            self.buffers = [ort.OrtValue.ortvalue_from_shape_and_type(shape, self.kv_dtype)
                            for _ in range(2 * self.layers)]
        io = self.session.io_binding()
        io.bind_output("logits")  # first: get_outputs() lists the outputs in binding order
        for name, value in feeds.items():
            io.bind_cpu_input(name, value)
        for i in range(self.layers):
            for j, kind in enumerate(("key", "value")):
                io.bind_ortvalue_input(f"past_key_values.{i}.{kind}", self.buffers[2 * i + j])
                io.bind_ortvalue_output(f"present.{i}.{kind}", self.buffers[2 * i + j])
        self.session.run_with_iobinding(io)
        return io.get_outputs()[0].numpy()[0]
