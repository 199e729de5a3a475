"""The note a long run gives after its first steps (timed with a fake clock here): once, with the
settings that shorten it, and only where the steps left would take longer than two hours."""
from __future__ import annotations

from stochreg.config import resolve_config
from stochreg.train import train
from test_time_budget import TINY, fake_clock


def notes_of_a_run(tiny_data_dir, tmp_path, seconds_between_readings: float, **overrides) -> list[str]:
    lines: list[str] = []
    cfg = resolve_config(overrides={**TINY, "data_dir": str(tiny_data_dir), "iters": 60, **overrides})
    train(cfg, tmp_path / "run", progress=False, log=lines.append, clock=fake_clock(seconds_between_readings))
    return [line for line in lines if line.startswith("note: at ")]


def test_a_slow_run_says_how_long_it_takes_and_what_shortens_it(tiny_data_dir, tmp_path):
    # two readings 60,000 s apart around 20 steps: 3,000 s a step, 19 steps left after step 41
    notes = notes_of_a_run(tiny_data_dir, tmp_path, 60_000.0)
    assert notes == [notes[0]] and notes[0].startswith("note: at 3000.0 s a step on cpu, the 19 steps left take "
                                                       "about 15.8 hours")
    assert "--time-budget" in notes[0] and "--image-size" not in notes[0]   # 28-pixel images are small already


def test_a_quick_run_and_a_budgeted_run_say_nothing(tiny_data_dir, tmp_path):
    assert notes_of_a_run(tiny_data_dir, tmp_path / "quick", 6.0) == []           # 0.3 s a step
    # 3,000 s a step again, and a budget of 3,000 minutes: 60 steps, the time the user chose
    assert notes_of_a_run(tiny_data_dir, tmp_path / "budget", 60_000.0, time_budget=3000.0) == []


def test_larger_images_are_told_the_side_of_the_recipe_measured_on_cpus():
    from stochreg.train.pace import SMALL_SIDE, LongRunNote
    ticks, notes = iter([0.0, 20_000.0]), []
    pace = LongRunNote(start=0, iters=1000, image_side=96, device="cpu", clock=lambda: next(ticks), log=notes.append)
    for done in (1, 21, 41):
        pace.at_sync(done, eval_seconds=0.0)
    assert len(notes) == 1 and f"--image-size {SMALL_SIDE} (smaller images on a smaller network" in notes[0]
    # that side gives the compact net, the small-image FixMatch recipe's (not WRN-28-2, about as costly as ResNet-18)
    from stochreg.config import resolve_config
    from stochreg.config.recipe import resolve_data_recipe
    cfg, _ = resolve_data_recipe(resolve_config(), (3, SMALL_SIDE, SMALL_SIDE), is_digits=False)
    assert cfg.net.startswith("compact")
