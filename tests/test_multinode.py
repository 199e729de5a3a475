"""Two torchrun agents on one machine stand for two nodes (c10d rendezvous on 127.0.0.1, gloo):
the run equals the same world size started on one node bitwise, global rank 0 alone writes the
run folder, a lost node stops the other with one clear line and a resumable checkpoint, and
``--resume-if-exists`` under ``--max-restarts`` continues a killed worker's run with no human."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stochreg.runtime.checkpoints import load_checkpoint
from test_distributed import environ_of, kill_agent, worker_pids
from tinydata import write_idx_dataset

pytestmark = pytest.mark.end_to_end   # every test here trains a model, or reads one a fixture trained

RUN = ["--labels", "20", "--batch-labelled", "8", "--batch-unlabelled", "8", "--views", "3", "--eval-every", "0",
       "--eval-batch", "50", "--rampup-iters", "4", "--no-progress", "--threads", "1", "--net", "compact-small",
       "--device", "cpu"]
TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workdir(tmp_path):
    write_idx_dataset(tmp_path / "data" / "mnist")
    for node in ("node0", "node1"):
        (tmp_path / node).mkdir()
    return tmp_path


def agent(workdir: Path, node: int, nnodes: int, per_node: int, port: int, args: list[str],
          extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """One torchrun agent, as on node ``node``: its own working directory, its own process group.
    Node 0 hosts the rendezvous store, as the node named by the endpoint does on a real cluster;
    left to itself, each agent on 127.0.0.1 tries to, and the first to bind the port wins, so a
    test that kills node 1 would sometimes take the store, and node 0's agent, with it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--node_rank", str(node),
               "--nproc_per_node", str(per_node), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
               "--rdzv_id", "test", "--rdzv_conf", f"is_host={int(node == 0)}", *extra, "-m", "stochreg", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(command, cwd=workdir / f"node{node}", env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"an agent did not finish within {TIMEOUT} s: {err[-2000:]}")
    return proc.returncode, out, err


def train_args(workdir: Path, out: str, iters: int, *more: str) -> list[str]:
    return ["train", "--data-dir", str(workdir / "data"), "--out", str(workdir / out), *RUN, "--iters", str(iters),
            *more]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {**{f"model.{k}": v for k, v in state["model"].items()}, **{f"ema.{k}": v for k, v in state["ema"].items()}}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert not [k for k in wa if not torch.equal(wa[k], wb[k])], f"{a.name} and {b.name} differ"


def two_nodes(workdir, per_node, args, extra=()):
    port = free_port()
    procs = [agent(workdir, node, 2, per_node, port, args, extra) for node in (0, 1)]
    return [finish(p) for p in procs]


@pytest.mark.parametrize("per_node", [1, 2])
def test_two_nodes_train_as_one_node_of_the_same_world_size(workdir, per_node):
    results = two_nodes(workdir, per_node, train_args(workdir, "nodes", 12))
    for code, _, err in results:
        assert code == 0, err[-2000:]
    one_node = agent(workdir, 0, 1, 2 * per_node, free_port(), train_args(workdir, "one-node", 12))
    code, _, err = finish(one_node)
    assert code == 0, err[-2000:]
    assert_same_weights(workdir / "nodes", workdir / "one-node")
    # global rank 0 alone wrote: the same files as the one-node run, nothing in node 1's folder,
    # and one final line in all, printed on node 0
    files = lambda run: sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert files(workdir / "nodes") == files(workdir / "one-node")
    assert not any((workdir / "node1").iterdir())
    assert [out.count("final test error") for _, out, _ in results] == [1, 0]


def wait_for_checkpoint(run: Path, proc: subprocess.Popen, step: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = [int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt")]
        if found and max(found) >= step:
            return
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.02)
    pytest.fail(f"no checkpoint of step {step} within {TIMEOUT} s")


def test_a_lost_node_stops_the_other_cleanly_and_the_job_restarts_exactly(workdir):
    reference = agent(workdir, 0, 1, 2, free_port(), train_args(workdir, "reference", 40, "--checkpoint-every", "5"))
    assert finish(reference)[0] == 0
    args = train_args(workdir, "lost", 40, "--checkpoint-every", "5", "--resume-if-exists")
    port = free_port()
    procs = [agent(workdir, node, 2, 1, port, args) for node in (0, 1)]
    wait_for_checkpoint(workdir / "lost", procs[0], 10)
    kill_agent(procs[1])                      # node 1 disappears: its agent and its worker
    started = time.monotonic()
    code, _, err = finish(procs[0])
    assert code != 0 and time.monotonic() - started < 120
    lines = [line for line in err.splitlines() if line.startswith("stochreg:")]
    assert len(lines) == 1 and "lost contact with another process" in lines[0], err[-3000:]
    assert not (workdir / "lost" / "results.json").exists()
    for checkpoint in (workdir / "lost" / "checkpoints").glob("step-*.pt"):
        assert load_checkpoint(checkpoint)["step"] > 0   # every checkpoint left on disk loads
    results = two_nodes(workdir, 1, args)       # the same command again, on both nodes
    for code, _, err in results:
        assert code == 0, err[-2000:]
    assert "resuming" in results[0][1]
    assert_same_weights(workdir / "reference", workdir / "lost")


def test_resume_if_exists_starts_continues_and_refuses_other_settings(workdir, capsys):
    from stochreg.cli import main
    args = train_args(workdir, "auto", 10, "--checkpoint-every", "5", "--resume-if-exists")
    assert main(args) == 0                                  # nothing there: a new run
    assert "final test error" in capsys.readouterr().out
    assert main(args) == 0                                  # finished: nothing to do
    assert "nothing left to do" in capsys.readouterr().out
    assert main([*args, "--lr", "0.5"]) == 2                # other settings: refused, with the reason
    assert "lr: 0.1 -> 0.5" in capsys.readouterr().err


def test_max_restarts_continues_a_killed_worker_from_its_last_checkpoint(workdir):
    reference = agent(workdir, 0, 1, 2, free_port(), train_args(workdir, "reference", 40, "--checkpoint-every", "5"))
    assert finish(reference)[0] == 0
    args = train_args(workdir, "restarted", 40, "--checkpoint-every", "5", "--resume-if-exists")
    proc = agent(workdir, 0, 1, 2, free_port(), args, extra=("--max-restarts", "1"))
    wait_for_checkpoint(workdir / "restarted", proc, 10)
    worker = next(pid for pid in worker_pids(proc.pid) if environ_of(pid).get("RANK") == "1")
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)                          # one forced failure
    code, out, err = finish(proc)
    assert code == 0, err[-2000:]
    assert "resuming" in out
    assert_same_weights(workdir / "reference", workdir / "restarted")
    print(f"restart: {time.monotonic() - killed_at:.1f} s from the kill to the end of the run")
