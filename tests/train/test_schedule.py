"""The two-stage BitNet b1.58 schedule: warmup to the peak, cosine, a sharp cooldown at mid-run, weight decay
rising by cosine to 0.1 in stage one and 0 in stage two."""

import pytest

from edgebit.train.schedule import WD_PEAK, Schedule


def test_two_stages():
    s = Schedule.make(steps=1000, lr=3e-3)
    assert (s.warmup, s.cooldown_at, s.lr2) == (50, 500, pytest.approx(7.5e-4))
    assert s.lr_at(0) == pytest.approx(3e-3 / 50)
    assert s.lr_at(49) == pytest.approx(3e-3)
    lrs = [s.lr_at(i) for i in range(1000)]
    assert all(a >= b for a, b in zip(lrs[49:499], lrs[50:500]))  # cosine decay through stage one
    assert lrs[499] == pytest.approx(1.5e-3, rel=1e-2) and lrs[500] == pytest.approx(7.5e-4)  # the cooldown drop
    assert lrs[-1] == pytest.approx(7.5e-5, rel=1e-2)
    assert s.wd_at(0) == 0 and s.wd_at(499) == pytest.approx(WD_PEAK) and s.wd_at(250) == pytest.approx(WD_PEAK / 2, rel=1e-2)
    assert all(s.wd_at(i) == 0 for i in range(500, 1000))
