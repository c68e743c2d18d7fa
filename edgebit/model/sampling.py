"""Text generation with the reference model: greedy, or temperature + top-p (nucleus) sampling.

Decoding is the reference model's own prefill + one-token-at-a-time KV-cache loop; this module only picks
the next token. A seeded generator makes sampled output reproducible.
"""

from __future__ import annotations

import torch

from edgebit.model.reference import ReferenceModel


def pick(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    """Next token from fp32 logits (V,): argmax when temperature == 0, else a sample from the smallest set
    of most likely tokens whose probability reaches top_p."""
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_p, order = probs.sort(descending=True)
    keep = sorted_p.cumsum(0) - sorted_p < top_p  # a token stays if the mass before it is below top_p
    sorted_p = sorted_p * keep
    choice = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=gen)
    return int(order[choice])


@torch.no_grad()
def generate(model: ReferenceModel, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, seed: int = 0, stop_ids: tuple[int, ...] = ()) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    limit = model.cfg.max_position_embeddings - len(prompt_ids)
    max_new_tokens = max(0, min(max_new_tokens, limit))
    if max_new_tokens == 0:
        return []
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens)
    logits = model.forward(torch.tensor([prompt_ids]), cache)
    out: list[int] = []
    while True:
        token = pick(logits[0, -1], temperature, top_p, gen)
        out.append(token)
        if token in stop_ids or len(out) == max_new_tokens:
            return out
        logits = model.forward(torch.tensor([[token]]), cache)
