"""The training loop: corpus -> tokenizer -> QAT with the two-stage schedule -> held-out loss -> checkpoint."""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from edgebit.errors import EdgebitError
from edgebit.train import state
from edgebit.train.bpe import BOS, train_bpe
from edgebit.train.corpus import load_corpus
from edgebit.train.data import encode_lines, heldout_batches, train_batch
from edgebit.train.export import write_checkpoint
from edgebit.train.model import PRESETS, WEIGHTS, TrainModel
from edgebit.train.schedule import Schedule

GRAD_CLIP = 1.0
BETAS = (0.9, 0.95)
EVAL_BATCH = 16


@dataclass
class TrainOptions:
    output: Path
    corpus: str | None = None  # "kjv" or None (then `paths`)
    paths: list[Path] = field(default_factory=list)
    preset: str = "small"
    vocab_size: int = 4096
    steps: int = 2400
    batch: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    lr2: float | None = None
    seed: int = 0
    quant: bool = True
    weights: str = "ternary"  # "ternary" (BitNet b1.58) | "binary" (BitNet 2023)
    groups: int = 1  # binary: groups of rows (scales) and of inputs (the LayerNorm in every linear)
    threads: int = 1
    checkpoint_every: int = 200
    checkpoint_dir: Path | None = None
    stop_at: int | None = None
    resume: bool = False
    force: bool = False

    def run_identity(self) -> dict:
        """The options a resumed run must share with the run it continues."""
        d = asdict(self)
        keep = ("corpus", "paths", "preset", "vocab_size", "steps", "batch", "seq_len", "lr", "lr2", "seed", "quant",
                "weights", "groups")
        return {k: [str(p) for p in d[k]] if k == "paths" else d[k] for k in keep}


@dataclass
class Result:
    output: Path | None  # None when stopped early by --stop-at
    step: int
    losses: list[float]
    heldout_loss: float | None = None
    heldout_ppl: float | None = None


def heldout_loss(model: TrainModel, stream: torch.Tensor, bos_id: int, seq_len: int) -> float:
    """Mean next-token cross-entropy over every held-out token (windows as data.heldout_batches)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in heldout_batches(stream, bos_id, EVAL_BATCH, seq_len):
            total += model.loss(inputs, targets).item() * targets.numel()
            count += targets.numel()
    model.train()
    return total / count


def _optimizer(model: TrainModel, lr: float) -> torch.optim.AdamW:
    # Weight decay acts on the linears only: decaying norms or the embedding buys nothing at this size.
    decay = [p for n, p in model.named_parameters() if n.endswith("_proj.weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("_proj.weight")]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=BETAS, eps=1e-8)


def _prepare_dir(o: TrainOptions, root: Path, run: dict):
    """Trains the tokenizer and starts the checkpoint dir, or (with --resume) reads both back."""
    from tokenizers import Tokenizer

    if o.resume:
        if not (root / "run.json").is_file() or not state.step_dirs(root):
            raise EdgebitError(f"{root}: no checkpoint to resume from (--resume)")
        state.check_run(root, run)
        return Tokenizer.from_file(str(root / "tokenizer.json"))
    if state.step_dirs(root) and not o.force:
        raise EdgebitError(f"{root}: holds checkpoints of an earlier run; pass --resume to continue it or "
                           f"--force to start over")
    if o.force:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return None


def _check_weights(o: TrainOptions) -> None:
    if o.weights not in WEIGHTS:
        raise EdgebitError(f"--weights {o.weights!r}: expected one of {', '.join(WEIGHTS)}")
    if o.weights == "ternary" and o.groups != 1:
        raise EdgebitError(f"--groups {o.groups}: groups are for --weights binary (b1.58 scales each tensor whole)")
    if o.weights == "binary" and not o.quant:
        raise EdgebitError("--weights binary with --no-quant: the float twin has no binary weights; drop one")
    if o.groups < 1:
        raise EdgebitError(f"--groups {o.groups}: expected a positive integer")
    s = PRESETS[o.preset]
    widths = {s.hidden_size, s.intermediate_size, s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim}
    odd = sorted(w for w in widths if w % o.groups)
    if odd:
        raise EdgebitError(f"--groups {o.groups}: does not divide the {o.preset} preset's width {odd[0]} (every "
                           "linear's rows and inputs are split into that many groups)")


def train(o: TrainOptions, on_step: Callable[[int, float, float], None] | None = None,
          log: Callable[[str], None] = lambda s: None) -> Result:
    if o.preset not in PRESETS:
        raise EdgebitError(f"--preset {o.preset!r}: expected one of {', '.join(PRESETS)}")
    _check_weights(o)
    if o.output.exists() and not o.force:
        raise EdgebitError(f"{o.output}: already exists; pass --force to replace it (--output)")
    torch.set_num_threads(o.threads)
    root = o.checkpoint_dir or o.output.parent / f"{o.output.name}.train"
    run = o.run_identity()
    corpus = load_corpus(o.corpus, o.paths)
    tok = _prepare_dir(o, root, run)
    if tok is None:
        t0 = time.time()
        tok = train_bpe(corpus.train, o.vocab_size)
        root.mkdir(parents=True, exist_ok=True)
        tok.save(str(root / "tokenizer.json"))
        (root / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        log(f"tokenizer: {tok.get_vocab_size()} tokens, trained in {time.time() - t0:.1f}s")
    bos = tok.token_to_id(BOS)
    train_ids, held_ids = encode_lines(tok, corpus.train), encode_lines(tok, corpus.heldout)
    log(f"corpus {corpus.name}: {len(train_ids):,} training tokens, {len(held_ids):,} held-out tokens")

    model = TrainModel(PRESETS[o.preset], tok.get_vocab_size(), quant=o.quant, weights=o.weights, groups=o.groups)
    model.init_weights(o.seed)
    opt = _optimizer(model, o.lr)
    sched = Schedule.make(o.steps, o.lr, o.lr2)
    step, losses = 0, []
    if o.resume:
        latest = state.step_dirs(root)[-1]
        step, losses = state.load(latest, model, opt)
        log(f"resumed from {latest} at step {step}")

    stop = min(o.steps, o.stop_at) if o.stop_at else o.steps
    model.train()
    while step < stop:
        lr, wd = sched.lr_at(step), sched.wd_at(step)
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr
        opt.param_groups[0]["weight_decay"] = wd
        inputs, targets = train_batch(train_ids, bos, o.seed, step, o.batch, o.seq_len)
        loss = model.loss(inputs, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        step += 1
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1], lr)
        if step % o.checkpoint_every == 0 or step == stop:
            state.save(root, step, model, opt, losses)
    if step < o.steps:
        log(f"stopped at step {step} (--stop-at); continue with --resume")
        return Result(None, step, losses)

    held = heldout_loss(model, held_ids, bos, o.seq_len)
    training = {
        "command": "edgebit " + shlex.join(sys.argv[1:]) if sys.argv and "edgebit" in sys.argv[0] else None,
        "options": run,
        "threads": o.threads,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens": len(train_ids),
        "heldout_tokens": len(held_ids),
        "heldout_loss": held,
        "heldout_perplexity": math.exp(held),
        "final_train_loss_mean_last_50": sum(losses[-50:]) / len(losses[-50:]),
        "loss_curve_every_50_steps": [round(sum(losses[i : i + 50]) / len(losses[i : i + 50]), 4)
                                      for i in range(0, len(losses), 50)],
    }
    out = write_checkpoint(model, tok, o.output, o.force, training)
    return Result(out, step, losses, held, math.exp(held))
