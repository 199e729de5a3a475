"""The projected training time a run says before step 1 (a few steps timed with a fake clock here, then
undone): once, with the settings that shorten it where it is over two hours; not for a short run."""
from __future__ import annotations

import pytest

import torch

from stochreg.config import resolve_config
from stochreg.runtime.checkpoints import load_checkpoint
from stochreg.train import train
from test_time_budget import TINY, fake_clock


def lines_of_a_run(tiny_data_dir, tmp_path, seconds_between_readings: float, **overrides) -> list[str]:
    lines: list[str] = []
    cfg = resolve_config(overrides={**TINY, "data_dir": str(tiny_data_dir), "iters": 120, **overrides})
    train(cfg, tmp_path / "run", progress=False, log=lines.append, clock=fake_clock(seconds_between_readings))
    return lines


def projections(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("projected training time")]


@pytest.mark.end_to_end
def test_a_slow_run_says_how_long_it_takes_before_step_one(tiny_data_dir, tmp_path):
    # 5 timed steps between two readings 60,000 s apart: 12,000 s a step for 120 steps = 400 hours
    lines = lines_of_a_run(tiny_data_dir, tmp_path, 60_000.0)
    said = projections(lines)
    assert said == [said[0]] and said[0].startswith("projected training time: 120 steps at 12000.00 s a step on cpu, "
                                                    "about 400.0 hours")
    assert "--time-budget" in said[0] and "--image-size" not in said[0]   # 28-pixel images are small already
    assert lines.index(said[0]) < next(i for i, line in enumerate(lines) if line.startswith("run "))


@pytest.mark.end_to_end
def test_the_timed_steps_are_undone(tiny_data_dir, tmp_path):
    lines_of_a_run(tiny_data_dir, tmp_path / "timed", 6.0)
    # the same run without the timing: a budget of its own steps' length fixes no steps, so time it apart
    cfg = resolve_config(overrides={**TINY, "data_dir": str(tiny_data_dir), "iters": 120})
    import stochreg.train.loop as loop
    loop.PROJECTED_FROM_STEPS, before = 10 ** 9, loop.PROJECTED_FROM_STEPS
    try:
        train(cfg, tmp_path / "short" / "run", progress=False, log=lambda line: None)
    finally:
        loop.PROJECTED_FROM_STEPS = before
    a, b = (load_checkpoint(tmp_path / name / "run" / "checkpoint.pt") for name in ("timed", "short"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.end_to_end
def test_a_quick_run_says_its_time_and_a_short_one_starts_at_once(tiny_data_dir, tmp_path):
    said = projections(lines_of_a_run(tiny_data_dir, tmp_path / "quick", 6.0))     # 1.2 s a step
    assert said == ["projected training time: 120 steps at 1.20 s a step on cpu, about 2 minutes"]
    assert projections(lines_of_a_run(tiny_data_dir, tmp_path / "short", 6.0, iters=60)) == []


def test_larger_images_are_told_the_side_of_the_recipe_measured_on_cpus():
    from stochreg.train.pace import SMALL_SIDE, projection
    line = projection(20_000.0, 1000, image_side=96, device="cpu")
    assert f"--image-size {SMALL_SIDE} (smaller images on a smaller network" in line
    # that side gives the compact net, the small-image FixMatch recipe's (not WRN-28-2, about as costly as ResNet-18)
    from stochreg.config.recipe import resolve_data_recipe
    cfg, _ = resolve_data_recipe(resolve_config(), (3, SMALL_SIDE, SMALL_SIDE), is_digits=False)
    assert cfg.net.startswith("compact")


def test_a_run_of_under_a_minute_is_said_to_be_so():
    from stochreg.train.pace import projection
    assert projection(0.03, 120, image_side=28, device="cpu") == \
        "projected training time: 120 steps at 0.03 s a step on cpu, under a minute"
