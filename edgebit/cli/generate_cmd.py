"""`edgebit generate`: continue a prompt with the reference model (exact W1.58A8 arithmetic, plain PyTorch)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgebit.cli.options import OptionalModelArg, RepetitionPenaltyOpt, RevisionOpt, TopKOpt, resolve_model


def generate(
    model: OptionalModelArg = None,
    revision: RevisionOpt = None,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue.")] = "In the beginning",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=1, help="Tokens to generate at most.")] = 60,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy; otherwise sample at this temperature.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling: keep the most likely tokens up to this mass.")] = 0.9,
    top_k: TopKOpt = 0,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
) -> None:
    """Generate text from a checkpoint with the reference model (slow but exact; greedy by default)."""
    from edgebit.backends.reference import ReferenceBackend
    from edgebit.cli.console import out
    from edgebit.generate import Sampling
    from edgebit.generate import generate as run
    from edgebit.tokenizer import load_tokenizer

    path = resolve_model(model, revision)
    tok = load_tokenizer(path)
    ids = tok.encode(prompt).ids
    ref = ReferenceBackend(path)
    max_new_tokens = max(0, min(max_new_tokens, ref.max_seq_len - len(ids)))
    sampling = Sampling(temperature, top_p, seed, top_k, repetition_penalty)
    new = run(ref, ids, max_new_tokens, sampling, ref.model.cfg.eos_token_ids).generated_ids
    text = tok.decode(ids + new, skip_special_tokens=True)
    # The byte-level tokenizer adds a prefix space to every encoded line; drop it when printing lines.
    text = text.replace("\n ", "\n")
    out.print(text.strip(), markup=False, highlight=False, soft_wrap=True)
