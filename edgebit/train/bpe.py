"""The byte-level BPE tokenizer trained on the training text, in Llama 3's form: text split by Llama 3's regex,
then byte-level without a prefix space; BOS prepended by the TemplateProcessing post-processor (as the reference
model and transformers expect), EOS a special token, newline-free lines as documents.

Why Llama 3's form: the stock runners read it exactly as `tokenizers` does. onnxruntime-genai's tokenizer
(onnxruntime-extensions) ignores ByteLevel's add_prefix_space, and ExecuTorch's takes BOS only from the post-
processor; with this form both give `tokenizers`' ids (onnxruntime-genai with add_special_tokens for the BOS)."""

from __future__ import annotations

BOS, EOS = "<s>", "</s>"
# Llama 3's pre-tokenizer pattern (the engine's C++ tokenizer implements exactly this one; runtime_ops/engine).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bpe(lines: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],  # ids 0 and 1
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable, no unknown token
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, bos_id)])
    return tok


def tokenizer_config(model_max_length: int) -> dict:
    """tokenizer_config.json for transformers' AutoTokenizer."""
    # add_eos_token spelled out: onnxruntime-genai appends EOS when asked for special tokens unless told not to.
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS,
            "add_bos_token": True, "add_eos_token": False, "model_max_length": model_max_length}
