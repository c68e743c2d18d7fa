"""What the stock runners and edgebit's native runner make of a checkpoint's tokenizer, said at export time in
one line per problem, so a user learns it before a device gives them different text.

Measured with the runtimes' own tokenizers (tests/engine/test_tokenizer_compat.py): onnxruntime-genai 0.18
(onnxruntime-extensions) ignores ByteLevel's add_prefix_space, normalizers and Metaspace; ExecuTorch 1.5.1's
HF tokenizer (TextLLMRunner) refuses to load normalizers (Lowercase) and Metaspace; onnxruntime-genai adds the template's BOS only
when asked (`tokenizer.update_options(add_special_tokens="true")`) and then also appends EOS unless
tokenizer_config.json says `"add_eos_token": false`; ExecuTorch's HF tokenizer ignores the template
post-processor, so TextLLMRunner's caller asks for the BOS (GenerationConfig.num_bos = 1). edgebit's native runner refuses what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

OG = "onnxruntime-genai"
ET = "ExecuTorch's TextLLMRunner"


def _pre_tokenizers(node) -> list[dict]:
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Sequence":
        return [p for sub in node.get("pretokenizers", []) for p in _pre_tokenizers(sub)]
    return [node]


def tokenizer_warnings(checkpoint: Path) -> list[str]:
    """One line per thing a runner would read differently from `tokenizers` (empty: every runner agrees)."""
    path = Path(checkpoint) / "tokenizer.json"
    if not path.is_file():
        return []
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return [f"{path}: not readable JSON; no runner can load it"]
    out = []
    normalizer = tok.get("normalizer")
    if normalizer:
        out.append(f"{path}: normalizer {normalizer.get('type')!r}: {OG} skips it (other ids for text it changes) "
                   f"and {ET} does not load it")
    for pre in _pre_tokenizers(tok.get("pre_tokenizer")):
        if pre.get("type") == "ByteLevel" and pre.get("add_prefix_space"):
            out.append(f"{path}: ByteLevel add_prefix_space: {OG} does not add the space, so the first word of a "
                       "prompt gets other ids (feed it ids, or retrain the tokenizer without it)")
        if pre.get("type") == "Metaspace":
            out.append(f"{path}: Metaspace pre-tokenizer: {OG} splits text differently from `tokenizers` and {ET} "
                       "does not load it")
    config = Path(checkpoint) / "tokenizer_config.json"
    post = tok.get("post_processor") or {}
    if post.get("type") == "TemplateProcessing":
        try:
            add_eos = json.loads(config.read_text()).get("add_eos_token") if config.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            add_eos = None
        if add_eos is not False:
            out.append(f"{config}: no \"add_eos_token\": false: {OG} with add_special_tokens (the way to get the "
                       "template's BOS) also appends EOS to every prompt")
    try:
        from edgebit.native_tokenizer import NativeTokenizer

        NativeTokenizer(path)
    except Exception as e:  # the engine's own one-line reason
        out.append(f"edgebit-runner cannot read it: {e}")
    return out
