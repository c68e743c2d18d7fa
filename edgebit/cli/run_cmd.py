from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ArtifactArg, JsonOpt, RepetitionPenaltyOpt, ThreadsOpt, TopKOpt, positive


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
    top_p: Annotated[float, typer.Option(max=1.0, callback=positive,
                                         help="Nucleus sampling mass in (0, 1] (with temperature > 0).")] = 1.0,
    top_k: TopKOpt = 0,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: ThreadsOpt = None,
    profile: Annotated[bool, typer.Option("--profile", help="ExecuTorch (.pte) artifacts: record an ETDump and "
                                          "print the per-operator time table from ExecuTorch's Inspector.")] = False,
    etdump: Annotated[Optional[Path], typer.Option(help="Where --profile writes the ETDump (default: "
                                                        "edgebit-run.etdp in the current directory).")] = None,
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
    manifest = read_manifest(artifact)
    if profile and manifest.get("target") != "executorch":
        raise typer.BadParameter(f"profiling is for ExecuTorch (.pte) artifacts; {artifact} targets "
                                 f"{manifest.get('target')}", param_hint="--profile")
    backend = open_backend(artifact, threads, profile=True) if profile else open_backend(artifact, threads)
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

    stop = tuple(manifest["config"].get("eos_token_ids", []))
    sampling = Sampling(temperature, top_p, seed, top_k, repetition_penalty)
    result = generate(backend, ids, min(max_new_tokens, room), sampling, stop, show)
    text = tokenizer.decode(result.generated_ids, skip_special_tokens=True) if tokenizer else None
    ops = None
    if profile:
        from edgebit.backends.executorch import op_profile

        etdump = backend.write_etdump((etdump or Path("edgebit-run.etdp")).resolve())
        ops = op_profile(etdump)
    if as_json:
        print(json.dumps({"prompt_ids": result.prompt_ids, "generated_ids": result.generated_ids, "text": text,
                          "prefill_tokens_per_s": result.prefill_tokens_per_s,
                          "decode_tokens_per_s": result.decode_tokens_per_s, "backend": backend.name,
                          **({"etdump": str(etdump), "ops": ops} if profile else {})}, indent=2))
        return
    print(stream.flush() if stream is not None else ",".join(map(str, result.generated_ids)))
    err.print(f"prefill {len(ids)} tokens: {result.prefill_tokens_per_s:.1f} tok/s; decode "
              f"{len(result.generated_ids)} tokens: {result.decode_tokens_per_s:.1f} tok/s ({backend.name})")
    if ops is not None:
        _print_ops(ops, etdump)


def _print_ops(ops: list[dict], etdump: Path) -> None:
    from rich.table import Table

    from edgebit.cli.console import err

    table = Table(title=f"operators over the whole run (ETDump: {etdump})")
    for column in ("op", "calls", "total ms", "share"):
        table.add_column(column, justify="left" if column == "op" else "right")
    for row in ops:
        table.add_row(row["op"], str(row["calls"]), f"{row['total_ms']:.2f}", f"{100 * row['share']:.1f}%")
    err.print(table)

