"""Is a checkpoint read right? A model read with an inverted weight scale or in the wrong family still runs and
still emits tokens, so nothing else notices. Two measurements on a short English text shipped with edgebit:

- its perplexity against chance (the vocabulary size): a trained model's is orders of magnitude lower;
- for checkpoints that store a weight_scale, the perplexity with every scale inverted (the other of
  transformers' two conventions, docs/weight-layout.md): the convention the model was trained with predicts
  better. This is the sharper test: BitNet's sub-norms and per-token quantization cancel much of a scale error
  (the shipped model read inverted scores 32 instead of 21, far from chance at 4,096), but never all of it.

`edgebit verify` reports it for the reference model, `edgebit inspect --check` on its own."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Genesis 1:1-5 (King James Version, public domain).
TEXT = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
        "and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. "
        "And God said, Let there be light: and there was light. And God saw the light, that it was good: "
        "and God divided the light from the darkness. And God called the light Day, and the darkness he "
        "called Night. And the evening and the morning were the first day.")
# Implausible when the model saves less than a quarter of the bits uniform guessing spends: perplexity at or
# above vocab ** 0.75 (512 for a 4096-token vocabulary, 6,740 for 2B4T's 128,256). The shipped model scores
# about 25 on the text (27 read with inverted scales: sub-norms hide most of a wrong convention, so the inverted
# reading is the sharper test).
CHANCE_EXPONENT = 0.75


@dataclass
class Plausibility:
    perplexity: float
    chance_perplexity: int  # uniform guessing: the vocabulary size
    threshold: float
    tokens: int
    inverted_perplexity: float | None  # every weight_scale inverted; None for master weights (no scale)
    plausible: bool

    def message(self) -> str:
        inverted = ("" if self.inverted_perplexity is None
                    else f", {self.inverted_perplexity:.4g} with the weight scales inverted")
        if self.plausible:
            return (f"plausible: perplexity {self.perplexity:.4g} on the check text{inverted}; chance is "
                    f"{self.chance_perplexity:,}")
        if self.perplexity >= self.threshold:
            return (f"IMPLAUSIBLE: perplexity {self.perplexity:.4g} on the check text is no better than chance "
                    f"({self.chance_perplexity:,} tokens; limit {self.threshold:.4g}): the model predicts nothing. "
                    "Random weights, or read wrongly (an inverted weight_scale, the wrong family)?")
        return (f"IMPLAUSIBLE: perplexity {self.perplexity:.4g} on the check text, but {self.inverted_perplexity:.4g} "
                "with every weight_scale inverted: the checkpoint was probably trained with the other convention; "
                "check quantization_config.linear_class (bitlinear divides by weight_scale, autobitlinear "
                "multiplies)")

    def to_dict(self) -> dict:
        return asdict(self)


def perplexity(logits: np.ndarray, ids: list[int]) -> float:
    """exp(mean next-token NLL) of logits [T, V] for ids [T], computed in float64."""
    z = logits[:-1].astype(np.float64)
    logz = z.max(-1) + np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))
    nll = logz - z[np.arange(len(ids) - 1), ids[1:]]
    return float(np.exp(nll.mean()))


def assess(ppl: float, vocab_size: int, tokens: int, inverted_ppl: float | None = None) -> Plausibility:
    threshold = float(vocab_size) ** CHANCE_EXPONENT
    plausible = bool(np.isfinite(ppl)) and ppl < threshold and (inverted_ppl is None or not inverted_ppl < ppl)
    return Plausibility(ppl, vocab_size, threshold, tokens, inverted_ppl, plausible)


def with_inverted_scales(weights):
    """The same ModelWeights with every ternary linear's gamma inverted (packed codes shared, nothing copied)."""
    from dataclasses import fields, replace

    from edgebit.model.weights import TernaryWeight

    def flip(layer):
        return replace(layer, **{f.name: replace(v, gamma=1.0 / v.gamma) for f in fields(layer)
                                 if isinstance(v := getattr(layer, f.name), TernaryWeight)})

    return replace(weights, layers=[flip(layer) for layer in weights.layers])


def inverted_perplexity(weights, ids: list[int]) -> float | None:
    """Perplexity of the text with every weight_scale inverted, or None when the checkpoint stores none."""
    if weights.weight_form == "master":
        return None
    import torch

    from edgebit.model.reference import ReferenceModel

    model = ReferenceModel(with_inverted_scales(weights))
    return perplexity(model.forward(torch.tensor([ids]), model.new_cache(1, len(ids)))[0].numpy(), ids)


def text_ids(tokenizer, max_len: int) -> list[int]:
    return tokenizer.encode(TEXT).ids[:max_len]


def check_checkpoint(path: Path) -> Plausibility:
    """The reference model's perplexity on the check text, tokenized with the checkpoint's tokenizer.json."""
    from edgebit.backends.reference import ReferenceBackend
    from edgebit.errors import CheckpointError
    from edgebit.tokenizer import load_tokenizer

    if not (Path(path) / "tokenizer.json").is_file() and (Path(path) / "tokenizer.error").is_file():
        load_tokenizer(Path(path))  # a GGUF whose embedded tokenizer did not convert: raises why
    if not (Path(path) / "tokenizer.json").is_file():
        raise CheckpointError(f"{Path(path) / 'tokenizer.json'}: not found; the plausibility check tokenizes its "
                              "text with the checkpoint's tokenizer")
    backend = ReferenceBackend(Path(path), None)
    ids = text_ids(load_tokenizer(Path(path)), min(backend.max_seq_len, 512))
    backend.max_seq_len = len(ids)
    backend.reset()
    ppl = perplexity(backend.forward(ids), ids)
    return assess(ppl, backend.vocab_size, len(ids), inverted_perplexity(backend.model.w, ids))
