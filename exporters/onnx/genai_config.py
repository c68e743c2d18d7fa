"""genai_config.json: what onnxruntime-genai needs to drive the exported decoder as a "llama"-type model
with edgebit's op library (which must sit in the model dir; genai refuses paths outside it)."""

from __future__ import annotations

from edgebit.model.config import ModelConfig


def genai_config(cfg: ModelConfig, max_seq_len: int, model_file: str, op_library: str | None,
                 in_place: bool = False) -> dict:
    session_options: dict = {"log_id": "onnxruntime-genai", "provider_options": []}
    if op_library:
        session_options["custom_ops_library"] = op_library
    eos = list(cfg.eos_token_ids) or [0]
    return {
        "model": {
            "bos_token_id": cfg.bos_token_id if cfg.bos_token_id is not None else 0,
            "context_length": max_seq_len,
            "decoder": {
                "session_options": session_options,
                "filename": model_file,
                "head_size": cfg.head_dim,
                "hidden_size": cfg.hidden_size,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "position_ids": "position_ids",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": cfg.num_heads,
                "num_hidden_layers": cfg.num_layers,
                "num_key_value_heads": cfg.num_kv_heads,
            },
            "eos_token_id": eos if len(eos) > 1 else eos[0],
            "pad_token_id": eos[0],
            "type": "llama",
            "vocab_size": cfg.vocab_size,
        },
        "search": {
            "diversity_penalty": 0.0, "do_sample": False, "early_stopping": True, "length_penalty": 1.0,
            "max_length": max_seq_len, "min_length": 0, "no_repeat_ngram_size": 0, "num_beams": 1,
            "num_return_sequences": 1,
            # An in-place graph (edgebit.Attention, fp32 or fp16 cache) writes into one max_length buffer
            # genai binds as past and present; the standard-ops graph concatenates past and new keys into a new present.
            "past_present_share_buffer": in_place,
            "repetition_penalty": 1.0, "temperature": 1.0, "top_k": 1, "top_p": 1.0,
        },
    }
