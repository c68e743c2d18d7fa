"""The byte-level BPE tokenizer trained on the training text: BOS prepended by the post-processor (as the
reference model and transformers expect), EOS as a special token, newline-free lines as documents."""

from __future__ import annotations

BOS, EOS = "<s>", "</s>"


def train_bpe(lines: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    # add_prefix_space: a word is one token whether it starts a line or not ("Ġthe" everywhere).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
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
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": EOS,
            "add_bos_token": True, "model_max_length": model_max_length}
