"""Training under torchrun (2 CPU processes, gloo) on tiny data: the same trajectory as one process
with the same global batch, exact resume after a kill, a dead rank stops the job, and errors
that every rank meets are printed once."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stochreg.runtime.checkpoints import load_checkpoint
from tinydata import write_idx_dataset

pytestmark = pytest.mark.end_to_end   # every test here trains a model, or reads one a fixture trained

# torchrun as a module of this interpreter; --standalone: a local rendezvous on a free port.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
RUN = ["--labels", "20", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3",
       "--eval-every", "10", "--eval-batch", "50", "--rampup-iters", "10", "--no-progress", "--threads", "1"]

# A network whose samples do not interact (no batch norm) and that draws no random numbers (no
# dropout): on it, splitting a batch over processes changes nothing but float summation order,
# so the trajectories must agree to float precision. (With batch norm, each process normalises
# by its own share's statistics unless --sync-bn; with dropout, each draws its own masks.)
PROBE = '''
import sys
from torch import nn
from stochreg.nets import NETS

@NETS.register("probe")
def probe(image_shape, num_classes):
    c, h, w = image_shape
    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * (h // 2) * (w // 2), num_classes))

from stochreg.cli import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    write_idx_dataset(folder / "data" / "mnist")
    (folder / "probe.py").write_text(PROBE)
    return folder


def launch(workdir, *args, processes: int = 2, script: str | None = None, **popen):
    """``torchrun ... -m stochreg ARGS`` (or ``torchrun ... SCRIPT ARGS``); ``processes=0``: no torchrun."""
    target = [str(workdir / script)] if script else ["-m", "stochreg"]
    if processes:
        command = [*TORCHRUN, "--nproc_per_node", str(processes), *target, *args]
    else:
        command = [sys.executable, *target, *args]
    # faulthandler: a rank that aborts (SIGABRT, SIGSEGV) prints where each of its threads was
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def run_to_end(workdir, *args, **kwargs) -> subprocess.CompletedProcess:
    proc = launch(workdir, *args, **kwargs)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def train_args(workdir, out, iters, net, every=10):
    return ["train", "--data-dir", str(workdir / "data"), "--out", str(workdir / out), *RUN,
            "--iters", str(iters), "--net", net, "--checkpoint-every", str(every)]


def weights(run_dir) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"ema.{k}": v for k, v in state["ema"].items()}}


def loss_records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_follow_the_single_process_trajectory(workdir):
    """Same global batch (10 labelled + 8x3 unlabelled views per step), 1 vs 2 processes.

    The only difference is the order of float additions (the gradient of 2 halves averaged vs
    the gradient of the whole). At lr 0.1 training amplifies that to ~1e-3 within 10 steps,
    exactly as running one process with 2 threads instead of 1 does; at lr 0.02 both stay
    below 1e-6 relative over 40 steps, which makes the tolerance below meaningful."""
    slow = ["--lr", "0.02", "--precision", "fp32"]   # bf16 (auto on some CPUs) rounds each half apart
    single = run_to_end(workdir, *train_args(workdir, "single", 40, "probe"), *slow, processes=0, script="probe.py")
    assert single.returncode == 0, single.stderr
    double = run_to_end(workdir, *train_args(workdir, "double", 40, "probe"), *slow, script="probe.py")
    assert double.returncode == 0, double.stderr
    a, b = loss_records(workdir / "single"), loss_records(workdir / "double")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for term in ("ce", "ts", "me", "test_error"):
            if term in ra:
                assert rb[term] == pytest.approx(ra[term], rel=1e-5, abs=1e-7), (ra["step"], term)
    wa, wb = weights(workdir / "single"), weights(workdir / "double")
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-5, atol=1e-6, msg=name)
    # Rank 0 alone writes: one log line per record, one results file, the world size recorded.
    results = json.loads((workdir / "double" / "results.json").read_text())
    assert results["world_size"] == 2 and "2 processes" in results["machine"]
    assert double.stderr.count("final test error") == 0 and double.stdout.count("final test error") == 1


def test_curriculum_thresholds_keep_the_same_classes_on_one_process_and_on_two(workdir):
    """--flex-threshold keeps a class per image of the pool; each rank predicts its own share of a
    batch, so the ranks gather their predictions and every rank keeps what one process keeps."""
    flex = ["--lr", "0.02", "--flex-threshold", "--threshold", "0.3"]
    for out, processes in (("flex-single", 0), ("flex-double", 2)):
        done = run_to_end(workdir, *train_args(workdir, out, 20, "probe"), *flex, processes=processes,
                          script="probe.py")
        assert done.returncode == 0, done.stderr
    single, double = (load_checkpoint(workdir / out / "checkpoints" / "step-00000020.pt")["terms"][0]["kept"]
                      for out in ("flex-single", "flex-double"))
    assert (single >= 0).sum() > 10, "too few predictions kept for the comparison to mean anything"
    assert torch.equal(double, single)


def test_two_process_run_killed_and_resumed_ends_where_the_uninterrupted_one_does(workdir):
    """compact-small has batch norm and dropout: exact resume needs every rank's own RNG back."""
    reference = run_to_end(workdir, *train_args(workdir, "reference", 50, "compact-small", every=5))
    assert reference.returncode == 0, reference.stderr
    args = train_args(workdir, "killed", 50, "compact-small", every=5)
    proc = launch(workdir, *args, start_new_session=True)
    kill_at = random.Random().choice([10, 15, 20, 25])
    deadline = time.monotonic() + 240
    checkpoints = workdir / "killed" / "checkpoints"
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [int(p.stem.split("-")[1]) for p in checkpoints.glob("step-*.pt")] if checkpoints.is_dir() else []
        if steps and max(steps) >= kill_at:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before step {kill_at}: {proc.stderr.read()}"
    kill_agent(proc)  # the launcher and both workers, as when a machine dies
    assert not (workdir / "killed" / "results.json").exists()
    assert not (workdir / "killed" / "results.json").exists()
    resumed = run_to_end(workdir, "train", "--resume", str(workdir / "killed"))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    wa, wb = weights(workdir / "reference"), weights(workdir / "killed")
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"killed at step >= {kill_at}: weights differ: {different[:5]}"


def test_a_dead_rank_stops_the_job_instead_of_hanging(workdir):
    proc = launch(workdir, *train_args(workdir, "dead-rank", 100_000, "compact-small", every=5),
                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "dead-rank" / "checkpoints").is_dir() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        rank1 = next(pid for pid in worker_pids(proc.pid) if environ_of(pid).get("RANK") == "1")
        os.kill(rank1, signal.SIGKILL)
        proc.wait(timeout=90)  # torchrun notices and stops rank 0; it does not wait forever
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert proc.returncode != 0
    assert "rank" in err and "1" in err and "SIGKILL" in err, err[-2000:]


def kill_agent(proc: subprocess.Popen) -> None:
    """SIGKILL a torchrun launcher and its workers, which torchrun starts in process groups of
    their own (a kill of the launcher's process group alone leaves them running)."""
    workers = worker_pids(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in workers:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    for pid in workers:   # reaped by init once orphaned; wait until they are gone
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break
            time.sleep(0.01)


def worker_pids(launcher: int) -> list[int]:
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    return [int(pid) for pid in children]


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_an_error_every_rank_meets_is_printed_once(workdir):
    """A global batch that does not split over the processes: one line, from rank 0."""
    result = run_to_end(workdir, *train_args(workdir, "odd-batch", 10, "compact-small"), "--batch-labelled", "9")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("stochreg:")]
    assert lines == ["stochreg: error: batch_labelled 9 is the global batch and must split evenly over the "
                     "2 processes; use a multiple of 2"], result.stderr[-2000:]
