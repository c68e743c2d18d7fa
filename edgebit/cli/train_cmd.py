"""`edgebit train`: BitNet b1.58 quantization-aware training of a small model (edgebit/train/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ForceOpt, OutputOpt


def train(
    output: OutputOpt,
    texts: Annotated[Optional[list[Path]], typer.Argument(help="UTF-8 text files to train on (one document a line).",
                                                           show_default=False)] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Built-in corpus: 'kjv' (King James Bible, public domain, "
                                                  "from Debian's bible-kjv: apt-get install bible-kjv bible-kjv-text).")] = None,
    preset: Annotated[str, typer.Option(help="Model size: 'tiny' (tests) or 'small' (the shipped model).")] = "small",
    vocab: Annotated[int, typer.Option(help="BPE vocabulary size (the tokenizer is trained on the same text).")] = 4096,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 2400,
    batch: Annotated[int, typer.Option(help="Sequences per step.")] = 16,
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence (BOS included).")] = 128,
    lr: Annotated[float, typer.Option(help="Stage-one peak learning rate.")] = 3e-3,
    lr2: Annotated[Optional[float], typer.Option(help="Stage-two (cooldown) learning rate [default: lr/4].",
                                                 show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights and of the batch order.")] = 0,
    no_quant: Annotated[bool, typer.Option("--no-quant", "--fp16-twin",
                                           help="Train the same architecture without quantization (the float "
                                                "baseline of the model card), in fp32.")] = False,
    weights: Annotated[str, typer.Option(help="'ternary' (BitNet b1.58: {-1, 0, +1}, absmean) or 'binary' (the "
                                         "original BitNet, 2023: sign(W - mean W) x mean|W|, a LayerNorm in every "
                                         "linear).")] = "ternary",
    groups: Annotated[int, typer.Option(help="--weights binary: groups of rows with their own scale and of inputs "
                                        "normalized on their own (the paper's G).")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    checkpoint_every: Annotated[int, typer.Option(help="Save a resumable checkpoint every N steps.")] = 200,
    checkpoint_dir: Annotated[Optional[Path], typer.Option(help="Where checkpoints go [default: OUTPUT.train next "
                                                           "to OUTPUT].", show_default=False)] = None,
    stop_at: Annotated[Optional[int], typer.Option(help="Save a checkpoint and stop at this step (continue later "
                                                   "with --resume).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint, bit for bit.")] = False,
    force: ForceOpt = False,
) -> None:
    """Train a small BitNet model (ternary b1.58 or binary QAT) and write an HF-format packed checkpoint."""
    from edgebit.cli.console import err
    from edgebit.train.loop import TrainOptions, train as run_training

    opts = TrainOptions(output=output, corpus=corpus, paths=list(texts or []), preset=preset, vocab_size=vocab,
                        steps=steps, batch=batch, seq_len=seq_len, lr=lr, lr2=lr2, seed=seed, quant=not no_quant,
                        weights=weights, groups=groups, threads=threads, checkpoint_every=checkpoint_every,
                        checkpoint_dir=checkpoint_dir, stop_at=stop_at, resume=resume, force=force)
    with _loss_bar(steps) as (on_step, log):
        result = run_training(opts, on_step=on_step, log=log)
    if result.output is None:
        return
    err.print(f"held-out loss {result.heldout_loss:.4f}, perplexity {result.heldout_ppl:.2f}")
    err.print(f"wrote {result.output}", markup=False)


def _loss_bar(total: int):
    """A rich progress bar with loss and learning rate; a plain line every LOG_EVERY steps too, so a log
    file of a run in the background (stderr not a terminal) shows progress."""
    import contextlib
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from edgebit.cli.console import err

    log_every = 50

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                      TextColumn("lr {task.fields[lr]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                      console=err) as progress:
            task = progress.add_task("train", total=total, loss="-", lr="-")
            recent: list[float] = []

            def on_step(step: int, loss: float, lr: float) -> None:
                recent.append(loss)
                del recent[:-log_every]
                progress.update(task, completed=step, loss=f"{sum(recent) / len(recent):.3f}", lr=f"{lr:.2e}")
                if not sys.stderr.isatty() and step % log_every == 0:
                    progress.console.print(f"step {step}/{total} loss {sum(recent) / len(recent):.4f} lr {lr:.2e}")

            yield on_step, lambda msg: progress.console.print(msg)

    return bar()
