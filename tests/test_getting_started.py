"""docs/getting-started.md is executed: every line of its ```bash blocks runs, in order, in an
empty folder holding a tiny MNIST, with small training budgets appended to `stochreg train`
(```sh blocks, the installation, are not run: the suite runs inside the installed package)."""
from __future__ import annotations

import pytest

import re
import shlex
import subprocess
import sys
from pathlib import Path


from stochreg.cli import main
from tinydata import write_idx_dataset

PAGE = Path(__file__).resolve().parent.parent / "docs" / "getting-started.md"
SMALL_BUDGET = ["--iters", "30", "--eval-every", "10", "--batch-unlabelled", "8", "--net", "compact-small",
                "--no-progress", "--threads", "2"]


def page_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_page_has_the_whole_journey():
    commands = " ".join(page_commands())
    for step in ("stochreg show-views", "stochreg train", "--resume", "stochreg predict", "stochreg.load",
                 "stochreg runs", "stochreg compare"):
        assert step in commands


@pytest.mark.end_to_end
def test_every_command_of_the_page_runs(tmp_path, monkeypatch, capsys):
    write_idx_dataset(tmp_path / "data" / "mnist")
    monkeypatch.chdir(tmp_path)
    for line in page_commands():
        words = shlex.split(line)
        if words[0] == "stochreg":
            args = words[1:] + (SMALL_BUDGET if words[1] == "train" and "--resume" not in words else [])
            assert main(args) == 0, f"{line}\n{capsys.readouterr().err}"
        else:
            python = str(Path(sys.executable))
            done = subprocess.run(line.replace("python -c", shlex.quote(python) + " -c", 1), shell=True,
                                  capture_output=True, text=True, executable="/bin/bash")
            assert done.returncode == 0, f"{line}\n{done.stderr}"
    out = capsys.readouterr().out
    assert re.search(r"my_digit\.png\t\d\t[01]\.\d{4}", out)  # the prediction line
    for produced in ("views.png", "runs/first/summary.md", "runs/first/curves.png", "runs/first/confusion.png",
                     "predictions.csv", "comparison.md", "comparison.png"):
        assert (tmp_path / produced).stat().st_size > 0, produced
