"""Training checkpoints: everything `--resume` needs to continue bit for bit, and nothing executable.

<checkpoint dir>/
  run.json, tokenizer.json          written once at the start: the options that shape the run, the tokenizer
  step-000400/                      one per checkpoint (the newest KEEP are kept), each written atomically:
    model.safetensors               latent fp32 weights by HF name
    optimizer.safetensors           AdamW's exp_avg / exp_avg_sq / step per parameter ("<name>.exp_avg", ...)
    state.json                      {"step": 400, "losses": [...]}
Batches are a function of (seed, step) and the model has no dropout, so weights + optimizer + step is the
whole state; the learning rate and weight decay are recomputed from the schedule.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from edgebit.atomic import atomic_output_dir
from edgebit.errors import EdgebitError

KEEP = 2
_ADAM_KEYS = ("exp_avg", "exp_avg_sq", "step")


def step_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir() and (p / "state.json").is_file())


def save(root: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, losses: list[float]) -> Path:
    names = {id(p): n for n, p in model.named_parameters()}
    opt_tensors = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                opt_tensors[f"{names[id(p)]}.{key}"] = value.detach().clone().contiguous()
    dest = root / f"step-{step:06d}"
    with atomic_output_dir(dest, force=True) as tmp:
        save_file({n: p.detach().contiguous() for n, p in model.named_parameters()}, tmp / "model.safetensors")
        save_file(opt_tensors, tmp / "optimizer.safetensors")
        (tmp / "state.json").write_text(json.dumps({"step": step, "losses": losses}) + "\n")
    for old in step_dirs(root)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def load(step_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, list[float]]:
    state = json.loads((step_dir / "state.json").read_text())
    weights = load_file(step_dir / "model.safetensors")
    opt_tensors = load_file(step_dir / "optimizer.safetensors")
    params = dict(model.named_parameters())
    if set(weights) != set(params):
        raise EdgebitError(f"{step_dir}/model.safetensors: tensors do not match the model being trained")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
            if f"{name}.step" in opt_tensors:
                opt.state[p] = {k: opt_tensors[f"{name}.{k}"] for k in _ADAM_KEYS}
    return int(state["step"]), [float(x) for x in state["losses"]]


def check_run(root: Path, run: dict) -> None:
    """A resumed run must be the same run: same corpus, shape, batch, schedule and seed."""
    saved = json.loads((root / "run.json").read_text())
    saved = {"weights": "ternary", "groups": 1, **saved}  # runs from before binary training were ternary
    diff = {k: (saved.get(k), v) for k, v in run.items() if saved.get(k) != v and k not in ("stop_at", "threads")}
    if diff:
        first = next(iter(diff))
        raise EdgebitError(f"{root}/run.json: --resume with a different {first} "
                           f"(checkpoint has {diff[first][0]!r}, this run {diff[first][1]!r})")
