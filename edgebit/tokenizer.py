"""The checkpoint's tokenizer.json, read with the `tokenizers` library (the same file the native and stock
runners read)."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import CheckpointError


def load_tokenizer(checkpoint_dir: str | Path):
    from tokenizers import Tokenizer

    path = Path(checkpoint_dir) / "tokenizer.json"
    why = Path(checkpoint_dir) / "tokenizer.error"  # a GGUF view whose embedded tokenizer did not convert
    if not path.is_file() and why.is_file():
        raise CheckpointError(why.read_text(encoding="utf-8").strip().splitlines()[0])
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; text commands need the checkpoint's tokenizer.json")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exception subclasses with multi-line messages
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a valid tokenizers file ({first_line})") from None


def byte_level_tokenizer(vocab_size: int, bos: str = "<s>", eos: str = "</s>"):
    """A byte-level BPE tokenizer with no merges: 256 byte tokens, then BOS and EOS. Enough to drive a
    model with random weights end to end; a trained model ships its own trained tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.pre_tokenizers import ByteLevel

    if vocab_size < 258:
        raise ValueError(f"vocab_size {vocab_size} cannot hold 256 byte tokens plus BOS and EOS")
    alphabet = ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab[bos], vocab[eos] = 256, 257
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([bos, eos])
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, 256)])
    return tok


class TextStream:
    """Turns generated token ids into printable text as they arrive, holding back a multi-byte character
    until all its byte tokens are in (byte-level BPE splits characters across tokens)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.shown = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        new, self.shown = text[len(self.shown):], text
        return new

    def flush(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        new, self.shown = text[len(self.shown):], text
        return new
