"""The two-stage schedule of BitNet b1.58 (the 2B4T technical report's recipe, scaled to a run of `steps`).

Stage one (steps [0, cooldown_at)): linear warmup to the high peak LR, then a cosine decay to half of it;
ternary weights tolerate (and need) a high LR while they settle which side of zero they are on.
Weight decay follows a cosine from 0 up to its peak WD_PEAK at the end of stage one.
Stage two (the cooldown, steps [cooldown_at, steps)): the LR drops at once to the lower `lr2` and decays
by cosine to lr2 / 10; weight decay is 0, so the latent weights stop being pulled toward zero while the
model consolidates (the report's sharp loss drop at the stage boundary comes from here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WD_PEAK = 0.1


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float  # stage-one peak
    lr2: float  # stage-two start
    warmup: int
    cooldown_at: int  # first step of stage two

    @classmethod
    def make(cls, steps: int, lr: float, lr2: float | None = None, warmup_frac: float = 0.05,
             cooldown_frac: float = 0.5) -> "Schedule":
        warmup = max(1, round(steps * warmup_frac))
        cooldown_at = max(warmup + 1, round(steps * cooldown_frac))
        return cls(steps, lr, lr / 4 if lr2 is None else lr2, warmup, min(cooldown_at, steps))

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if step < self.cooldown_at:
            frac = (step - self.warmup) / max(1, self.cooldown_at - self.warmup)
            return self.lr * (0.5 + 0.25 * (1 + math.cos(math.pi * frac)))  # peak -> peak / 2
        frac = (step - self.cooldown_at) / max(1, self.steps - self.cooldown_at)
        end = self.lr2 / 10
        return end + (self.lr2 - end) * 0.5 * (1 + math.cos(math.pi * frac))

    def wd_at(self, step: int) -> float:
        if step >= self.cooldown_at:
            return 0.0
        frac = step / max(1, self.cooldown_at - 1)
        return WD_PEAK * 0.5 * (1 - math.cos(math.pi * frac))

    def stage(self, step: int) -> int:
        return 1 if step < self.cooldown_at else 2
