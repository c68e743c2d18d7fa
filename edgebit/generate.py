"""Token generation over any Backend: greedy by default (reproducible), or temperature / top-k / top-p sampling,
with HF-style repetition penalty. The native engine (runtime_ops/engine/sampler.cpp) applies the same rules in the
same order (penalty, temperature, top-k, top-p); only the random numbers differ."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0  # 1: off; > 1 divides positive / multiplies negative logits of seen ids


@dataclass
class Generation:
    prompt_ids: list[int]
    generated_ids: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def prefill_tokens_per_s(self) -> float:
        return len(self.prompt_ids) / self.prefill_seconds if self.prefill_seconds else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        # The first generated token comes from the prefill's logits; each later one costs one decode step.
        steps = len(self.generated_ids) - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds else 0.0


def pick_token(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator, seen: set[int] = frozenset()) -> int:
    if sampling.repetition_penalty != 1.0 and seen:
        logits = logits.astype(np.float64)  # a copy: the backend's array stays as it was
        ids = np.fromiter(seen, dtype=np.int64)
        ids = ids[ids < len(logits)]
        vals = logits[ids]
        logits[ids] = np.where(vals > 0, vals / sampling.repetition_penalty, vals * sampling.repetition_penalty)
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / sampling.temperature
    if 0 < sampling.top_k < len(z):
        cut = np.partition(z, -sampling.top_k)[-sampling.top_k]
        z = np.where(z >= cut, z, -np.inf)
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < sampling.top_p  # smallest set reaching top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))


def generate(backend, prompt_ids: list[int], max_new_tokens: int, sampling: Sampling = Sampling(),
             stop_ids: tuple[int, ...] = (), on_token: Callable[[int], None] | None = None) -> Generation:
    rng = np.random.default_rng(sampling.seed)
    result = Generation(list(prompt_ids))
    backend.reset()
    t0 = time.perf_counter()
    logits = backend.forward(list(prompt_ids))[-1]
    result.prefill_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen = set(prompt_ids)
    for i in range(max_new_tokens):
        token = pick_token(logits, sampling, rng, seen)
        seen.add(token)
        result.generated_ids.append(token)
        if on_token:
            on_token(token)
        if token in stop_ids or i == max_new_tokens - 1:
            break
        logits = backend.forward([token])[-1]
    result.decode_seconds = time.perf_counter() - t0
    return result
