from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ArtifactArg, JsonOpt, ThreadsOpt


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of token ids", param_hint="--prompt-ids")
    if not ids or min(ids) < 0:
        raise typer.BadParameter("expected at least one non-negative token id", param_hint="--prompt-ids")
    return ids


def run(
    artifact: ArtifactArg,
    prompt: Annotated[Optional[str], typer.Option(help="Prompt text (needs the artifact's tokenizer.json).")] = None,
    prompt_ids: Annotated[Optional[str], typer.Option(help="Prompt as token ids, e.g. 5,17,923.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate at most.")] = 64,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy (default, reproducible).")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling mass (with temperature > 0).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate text from an artifact, streaming it, then print prefill and decode speed."""
    from edgebit.backends import open_backend
    from edgebit.cli.console import err
    from edgebit.generate import Sampling, generate
    from edgebit.artifact import read_manifest
    from edgebit.tokenizer import TextStream, load_tokenizer

    if (prompt is None) == (prompt_ids is None):
        raise typer.BadParameter("give exactly one of --prompt and --prompt-ids", param_hint="--prompt")
    backend = open_backend(artifact, threads)
    tokenizer = load_tokenizer(artifact) if prompt is not None or (artifact / "tokenizer.json").is_file() else None
    ids = tokenizer.encode(prompt).ids if prompt is not None else _parse_ids(prompt_ids)
    if max(ids) >= backend.vocab_size:
        raise typer.BadParameter(f"token id {max(ids)} is outside the vocabulary (0..{backend.vocab_size - 1})",
                                 param_hint="--prompt-ids")
    room = backend.max_seq_len - len(ids)
    if room < 1:
        raise typer.BadParameter(f"the prompt has {len(ids)} tokens; the artifact serves {backend.max_seq_len}",
                                 param_hint="--prompt")
    stream = TextStream(tokenizer) if tokenizer is not None and not as_json else None

    def show(token: int) -> None:
        if stream is not None:
            sys.stdout.write(stream.push(token))
            sys.stdout.flush()

    stop = tuple(read_manifest(artifact)["config"].get("eos_token_ids", []))
    result = generate(backend, ids, min(max_new_tokens, room), Sampling(temperature, top_p, seed), stop, show)
    text = tokenizer.decode(result.generated_ids, skip_special_tokens=True) if tokenizer else None
    if as_json:
        print(json.dumps({"prompt_ids": result.prompt_ids, "generated_ids": result.generated_ids, "text": text,
                          "prefill_tokens_per_s": result.prefill_tokens_per_s,
                          "decode_tokens_per_s": result.decode_tokens_per_s, "backend": backend.name}, indent=2))
        return
    print(stream.flush() if stream is not None else ",".join(map(str, result.generated_ids)))
    err.print(f"prefill {len(ids)} tokens: {result.prefill_tokens_per_s:.1f} tok/s; decode "
              f"{len(result.generated_ids)} tokens: {result.decode_tokens_per_s:.1f} tok/s ({backend.name})")

