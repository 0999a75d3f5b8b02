"""The pieces of train(): options, planning, the step loop and checkpointing, each alone."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import equinox as eqx
import numpy as np
import pytest

from workshop_astro.sde import VPSDE
from workshop_astro.train import (
    Plan, RunOptions, RunProgress, TrainConfig, _Checkpoints, checkpoint_meta,
    compile_and_measure, init_state, learning_rate, measured_step_time, plan_steps,
    read_checkpoint_meta, replan_total, run_steps, save_checkpoint, start_or_resume, train,
)
from workshop_astro.unet import UNetConfig

TINY = UNetConfig(channels=4, mults=(1,), attention_levels=(), time_dim=8)
CFG = TrainConfig(batch_size=4, warmup_steps=10, peak_lr=1e-3, recipe="eps")


# --- options

def test_run_options_need_a_budget_or_a_number_of_steps():
    with pytest.raises(ValueError, match=r"budget_s.*max_steps"):
        RunOptions()
    assert RunOptions(budget_s=5.0).max_steps is None


def test_train_names_an_unknown_option_and_lists_the_known_ones():
    with pytest.raises(TypeError, match=r"unknown option\(s\) budget;.*budget_s.*reserve_fn"):
        train(np.zeros((4, 3, 8, 8), np.float32), TINY, CFG, budget=5.0)


# --- planning (no training at all)

def test_measured_step_time_leaves_out_the_compiling_step():
    assert measured_step_time([30.0, 0.2, 0.4, 0.3]) == pytest.approx(0.3)
    assert measured_step_time([2.0]) == 2.0


def test_plan_fills_the_budget_and_keeps_the_warmup_short():
    plan = plan_steps(CFG, step_time_s=0.5, steps_done=4, seconds_left=100.0, max_steps=None)
    assert plan.total_steps == 4 + int(0.97 * 100.0 / 0.5) and plan.warmup_steps == CFG.warmup_steps
    assert (plan.peak_lr, plan.min_lr_ratio, plan.step_time_s) == (CFG.peak_lr, CFG.min_lr_ratio, 0.5)
    assert plan_steps(CFG, 0.5, 4, 100.0, max_steps=50).total_steps == 50  # max_steps caps the budget
    short = plan_steps(CFG, 1.0, 0, None, max_steps=20)  # no budget: exactly max_steps
    assert short.total_steps == 20 and short.warmup_steps == 4  # a fifth of the steps
    assert plan_steps(CFG, 1.0, 3, seconds_left=-5.0, max_steps=None).total_steps == 3  # no time left
    with pytest.raises(ValueError, match="seconds_left.*max_steps"):
        plan_steps(CFG, 1.0, 0, None, None)


def test_replan_follows_the_pace_within_its_bounds():
    assert replan_total(100, pace_s=0.5, seconds_left=10.0) == 100 + int(0.97 * 10.0 / 0.5)
    assert replan_total(100, pace_s=2.0, seconds_left=10.0) == 104  # slower machine: fewer steps
    assert replan_total(100, 0.5, 10.0, max_steps=105) == 105
    assert replan_total(100, 0.5, 10.0, ceiling=110) == 110  # a resumed plan is never extended
    assert replan_total(100, 0.5, 0.0) == 101  # at least one more step


# --- the loop, with a stand-in step (nothing compiled; the compiled step runs it in
# test_astro_galaxy_train.py) and a simulated clock

class _FakeStep:
    """Advances the step counter, returns loss = 1 / step, and moves the clock by ``pace``."""

    def __init__(self, pace=1.0):
        self.pace, self.now, self.lrs = pace, 0.0, []

    def clock(self):
        return self.now

    def __call__(self, state, data, lr):
        self.lrs.append(float(lr))
        self.now += self.pace
        return SimpleNamespace(step=state.step + 1), 1.0 / (state.step + 1)


@functools.lru_cache(maxsize=1)
def _weights():
    return init_state(TINY, CFG)


def _progress(step=0, total=30, step_time=1.0, resumed_from=0, weights=False):
    # a real TrainState where it is saved, a bare step counter where the loop only counts
    state = eqx.tree_at(lambda s: s.step, _weights(), _weights().step + step) if weights else SimpleNamespace(step=step)
    plan = Plan(total, 5, CFG.peak_lr, CFG.min_lr_ratio, step_time)
    return RunProgress(state, [], plan, resumed_from=resumed_from)


def test_run_steps_takes_the_planned_steps_with_the_schedule():
    fake, progress, seen = _FakeStep(), _progress(total=30), []
    stopped = run_steps(fake, progress, None, after_step=lambda s, loss: seen.append((s, loss)))
    assert stopped == "planned" and int(progress.state.step) == 30
    assert fake.lrs == [pytest.approx(float(learning_rate(s, progress.plan))) for s in range(30)]
    assert seen == [(s, 1.0 / s) for s in range(1, 31)] and progress.losses == [loss for _, loss in seen]


def test_run_steps_replans_to_the_deadline_and_stops_before_it():
    fake, progress = _FakeStep(pace=1.0), _progress(total=1000)
    stopped = run_steps(fake, progress, None, deadline=100.0, clock=fake.clock)
    # re-planned after 50 steps (a twentieth of 1000) from the pace of 1 s/step: 50 + 0.97 * 50
    assert stopped == "planned" and progress.plan.total_steps == 98 and int(progress.state.step) == 98
    fake, progress = _FakeStep(), _progress(total=10)
    assert run_steps(fake, progress, None, deadline=0.4, clock=fake.clock) == "deadline"
    assert int(progress.state.step) == 0 and fake.lrs == []


def test_a_resumed_plan_is_not_extended():
    fake, progress = _FakeStep(pace=0.01), _progress(step=5, total=20, resumed_from=5)
    assert run_steps(fake, progress, None, deadline=1e6, clock=fake.clock) == "planned"
    assert progress.plan.total_steps == 20 and int(progress.state.step) == 20
    assert fake.lrs[0] == pytest.approx(float(learning_rate(5, progress.plan)))


def test_an_interrupt_leaves_the_progress_at_the_last_step():
    def interrupt(step, loss):
        if step == 7:
            raise KeyboardInterrupt

    progress = _progress(step=2, total=30)
    with pytest.raises(KeyboardInterrupt):
        run_steps(_FakeStep(), progress, None, after_step=interrupt)
    assert int(progress.state.step) == 7 and len(progress.losses) == 5


def test_compile_and_measure_times_each_first_step():
    progress, steps = _progress(total=10), []
    provisional = Plan(10**9, CFG.warmup_steps, CFG.peak_lr, CFG.min_lr_ratio)
    times = compile_and_measure(_FakeStep(), progress, None, provisional, 3, callback=lambda s, loss: steps.append(s))
    assert len(times) == 4 and all(t >= 0 for t in times) and steps == [1, 2, 3, 4]
    assert progress.losses == [1.0, 0.5, 1 / 3, 0.25]
    assert len(compile_and_measure(_FakeStep(), _progress(), None, provisional, 3, max_steps=2)) == 2


# --- checkpointing

def test_checkpoint_meta_keeps_the_file_format():
    progress = _progress(total=30, weights=True)
    progress.losses[:] = [0.5, 0.25]
    progress.budget_s = 60.0
    meta = checkpoint_meta(progress, TINY, CFG, VPSDE(), "running")
    assert list(meta) == ["unet", "train", "plan", "losses", "stopped", "sde", "budget_s"]
    assert meta["plan"]["total_steps"] == 30 and meta["sde"] == "VPSDE" and meta["train"]["recipe"] == "eps"
    assert checkpoint_meta(RunProgress(progress.state), TINY, CFG, VPSDE(), "planned")["plan"] is None


def test_start_or_resume_starts_afresh_or_resumes_the_plan(tmp_path, capsys):
    fresh = start_or_resume(tmp_path / "absent.eqx", TINY, CFG, RunOptions(budget_s=30.0))
    assert int(fresh.state.step) == 0 and fresh.plan is None and fresh.budget_s == 30.0 and fresh.resumed_from == 0
    saved = _progress(step=6, total=30, weights=True)
    saved.losses[:], saved.budget_s = [1.0] * 6, 60.0
    path = save_checkpoint(tmp_path / "c.eqx", saved.state, checkpoint_meta(saved, TINY, CFG, VPSDE(), "interrupted"))
    back = start_or_resume(path, TINY, CFG, RunOptions(budget_s=120.0))
    assert back.resumed_from == 6 and int(back.state.step) == 6 and back.losses == [1.0] * 6
    assert back.plan == saved.plan and back.budget_s == 60.0  # the plan and the budget it was made for
    assert "resuming" in capsys.readouterr().out


def test_periodic_checkpoints_are_written_when_due(tmp_path):
    progress = _progress(total=30, weights=True)
    meta = lambda stopped: checkpoint_meta(progress, TINY, CFG, VPSDE(), stopped)  # noqa: E731
    rarely = _Checkpoints(tmp_path / "rare.eqx", 1e9, meta)
    rarely.save_if_due(progress.state)
    assert not (tmp_path / "rare.eqx").exists()
    always = _Checkpoints(tmp_path / "often.eqx", -1.0, meta)
    always.save_if_due(progress.state)
    assert read_checkpoint_meta(tmp_path / "often.eqx")["stopped"] == "running"
    _Checkpoints(None, -1.0, meta).save(progress.state, "planned")  # no path: nothing to write
