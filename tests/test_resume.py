"""Exact resume: a run killed at any moment (SIGKILL included) and resumed ends bitwise where an
uninterrupted run ends; damaged checkpoints fall back; NaN losses and full disks stop cleanly."""
from __future__ import annotations

import errno
import shutil
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stochreg.runtime.checkpoints import load_checkpoint
from stochreg.cli import main
from tinydata import write_idx_dataset

# Every run pins the thread count: a different count may change float summation order.
RUN = ["--labels", "20", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3",
       "--eval-every", "10", "--eval-batch", "50", "--rampup-iters", "10", "--no-progress", "--threads", "2",
       "--net", "compact-small"]


def train_args(data_dir, out, iters, every):
    return ["train", "--data-dir", str(data_dir), "--out", str(out), *RUN, "--iters", str(iters),
            "--checkpoint-every", str(every)]


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"ema.{k}": v for k, v in state["ema"].items()}}


def assert_same_weights(a, b):
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different[:5]}"


@pytest.fixture(scope="module")
def shared_reference(tmp_path_factory):
    """An uninterrupted 60-step run on its own copy of the tiny data (trained once per module)."""
    folder = tmp_path_factory.mktemp("reference")
    write_idx_dataset(folder / "data" / "mnist")
    assert main(train_args(folder / "data", folder / "run", 60, 5)) == 0
    return folder / "run"


@pytest.fixture
def reference(shared_reference, tmp_path):
    """A private copy of the reference run, which a test may modify."""
    return Path(shutil.copytree(shared_reference, tmp_path / "reference"))


def start_subprocess(data_dir, out, iters, every):
    return subprocess.Popen([sys.executable, "-m", "stochreg", *train_args(data_dir, out, iters, every)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc, out, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("step-*.pt")]
        if steps and max(steps) >= at_least:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended before step {at_least}: {proc.stderr.read()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no checkpoint appeared in time")


@pytest.mark.end_to_end
def test_sigkill_at_a_random_step_then_resume_is_bitwise_exact(tiny_data_dir, tmp_path, reference, capsys):
    seed = random.randrange(10**6)
    kill_after = random.Random(seed).randrange(5, 50)
    out = tmp_path / "killed"
    proc = start_subprocess(tiny_data_dir, out, 60, 5)
    wait_for_checkpoint(proc, out, kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"(random seed {seed}) the run ended before it was killed"
    assert not (out / "results.json").exists()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_weights(out, reference)


@pytest.mark.end_to_end
def test_sigterm_checkpoints_the_current_step_and_exits(tiny_data_dir, tmp_path, reference):
    out = tmp_path / "stopped"
    proc = start_subprocess(tiny_data_dir, out, 60, 1000)  # no periodic checkpoint before the signal
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM after step" in stderr and "--resume" in stderr
    assert len(list((out / "checkpoints").glob("step-*.pt"))) == 1
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert_same_weights(out, reference)


@pytest.mark.end_to_end
def test_damaged_newest_checkpoint_falls_back_to_the_previous(tiny_data_dir, tmp_path, reference, capsys):
    out = tmp_path / "damaged"
    assert main(train_args(tiny_data_dir, out, 60, 5) + ["--keep-checkpoints", "3"]) == 0
    steps = sorted((out / "checkpoints").glob("step-*.pt"))
    assert [p.name for p in steps] == ["step-00000050.pt", "step-00000055.pt", "step-00000060.pt"]
    data = steps[-1].read_bytes()
    steps[-1].write_bytes(data[: len(data) // 2])  # a torn write of the newest checkpoint
    (out / "checkpoint.pt").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "warning: skipping damaged checkpoint" in printed and "resuming" in printed and "step 55" in printed
    assert_same_weights(out, reference)


def test_resume_refuses_other_settings_unless_forced(tiny_data_dir, tmp_path, reference, capsys):
    code = main(["train", "--resume", str(reference), "--lr", "0.5", "--no-progress"])
    assert code == 2
    assert "cannot resume" in capsys.readouterr().err
    # settings that do not change the trajectory are accepted without --force
    assert main(["train", "--resume", str(reference), "--eval-every", "0", "--no-progress"]) == 0


@pytest.mark.end_to_end
def test_resume_with_force_trains_further(tiny_data_dir, tmp_path, reference, capsys):
    assert main(["train", "--resume", str(reference), "--iters", "70", "--force", "--no-progress"]) == 0
    assert load_checkpoint(reference / "checkpoint.pt")["step"] == 70
    results = json.loads((reference / "results.json").read_text())
    assert results["iters"] == 70 and results["resumed_at"] == 60
    assert "resuming" in capsys.readouterr().out


@pytest.mark.end_to_end
def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tiny_data_dir, tmp_path, reference,
                                                                      monkeypatch, capsys):
    import stochreg.runtime.checkpoints as checkpointing
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_then_disk_full(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(checkpointing.os, "fsync", fsync_then_disk_full)
    out = tmp_path / "full"
    assert main(train_args(tiny_data_dir, out, 60, 5) + ["--keep-checkpoints", "5"]) == 2
    err = capsys.readouterr().err
    assert "could not write checkpoint" in err and "No space left on device" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000005.pt", "step-00000010.pt"]
    monkeypatch.setattr(checkpointing.os, "fsync", real_fsync)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert_same_weights(out, reference)


@pytest.mark.end_to_end
def test_nan_loss_names_the_term_and_step_and_keeps_the_good_checkpoint(tiny_data_dir, tmp_path, monkeypatch,
                                                                         capsys):
    from stochreg.methods import combos as methods  # where the default method (ts-me-fixmatch) calls the ME loss
    real = methods.mutual_exclusivity
    steps = {"n": 0}

    def me_goes_bad(probs):
        steps["n"] += 1
        value = real(probs)
        return value * float("nan") if steps["n"] > 17 else value  # from step 17 (0-based) on

    monkeypatch.setattr(methods, "mutual_exclusivity", me_goes_bad)
    out = tmp_path / "nan"
    assert main(train_args(tiny_data_dir, out, 60, 5)) == 2
    err = capsys.readouterr().err
    assert "loss term me became NaN or infinite at step 17" in err and "step-00000015.pt" in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000010.pt", "step-00000015.pt"]
    state = load_checkpoint(out / "checkpoints" / "step-00000015.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
