"""The command line end to end on a tiny IDX dataset: train, eval, list, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from stochreg.cli import main
from stochreg.config import PRESETS, resolve_config

TINY = ["--iters", "12", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3",
        "--eval-every", "6", "--eval-batch", "50", "--rampup-iters", "4", "--no-progress"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("method", ["supervised", "ts", "me", "ts-me"])
@pytest.mark.end_to_end
def test_train_writes_a_complete_run_folder(tiny_data_dir, tmp_path, capsys, method):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--method", method,
                                    "--out", out, *TINY], capsys)
    assert code == 0, stderr
    for name in ("config.yaml", "labelled_indices.json", "metrics.jsonl", "checkpoint.pt", "results.json"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert 0 <= results["test_error"] <= 1 and results["method"] == method and results["iters"] == 12
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "test_error" in m] == [6, 12]
    assert metrics[-1]["test_error"] == results["test_error"] and metrics[0]["step"] == 1  # losses after step 1
    assert ("ts" in metrics[-1]) == ("ts" in method) and ("me" in metrics[-1]) == ("me" in method)
    assert len(json.loads((out / "labelled_indices.json").read_text())) == 20
    assert yaml.safe_load((out / "config.yaml").read_text())["method"] == method


@pytest.mark.end_to_end
def test_eval_reproduces_the_reported_error(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--out", out, "--ema", "0.9", *TINY],
                   capsys)[0] == 0
    code, stdout, _ = run_cli(["eval", out], capsys)
    assert code == 0
    reported = json.loads((out / "results.json").read_text())
    assert json.loads(stdout)["test_error"] == reported["test_error"]
    assert json.loads(stdout)["weights"] == reported["evaluated"] == "ema"


@pytest.mark.end_to_end
def test_same_seed_same_result(tiny_data_dir, tmp_path, capsys):
    errors = []
    for name in ("a", "b"):
        assert run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--out", tmp_path / name,
                        *TINY], capsys)[0] == 0
        errors.append(json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[-1]))
    assert errors[0]["ce"] == errors[1]["ce"] and errors[0]["test_error"] == errors[1]["test_error"]
    split = [(tmp_path / n / "labelled_indices.json").read_text() for n in ("a", "b")]
    assert split[0] == split[1]


@pytest.mark.end_to_end
def test_training_learns_the_tiny_problem(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data-dir", tiny_data_dir, "--labels", "50", "--out", out, "--iters", "60",
            "--batch-labelled", "25", "--batch-unlabelled", "16", "--views", "3", "--eval-every", "0",
            "--transform", "none", "--lr", "0.05", "--no-progress"]
    assert run_cli(args, capsys)[0] == 0
    assert json.loads((out / "results.json").read_text())["test_error"] < 0.5  # chance is 0.9


@pytest.mark.end_to_end
def test_default_run_folder_never_clobbers(tiny_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", *TINY], capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mnist@20.s0-ts-me-fixmatch", "mnist@20.s0-ts-me-fixmatch-2"]


@pytest.mark.end_to_end
def test_paper_preset_runs(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, stderr = run_cli(["train", "--preset", "paper-mnist", "--data-dir", tiny_data_dir, "--labels", "20",
                               "--out", out, "--iters", "3", "--eval-every", "0", "--eval-batch", "50",
                               "--no-progress"], capsys)
    assert code == 0, stderr
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["net"], cfg["views"], cfg["momentum"], cfg["schedule"]) == ("fmp-mnist", 5, 0.99, "exp")


@pytest.mark.parametrize("preset", [name for name in PRESETS if name.startswith("paper-")])
def test_paper_presets_are_the_papers_method_whatever_the_defaults(preset):
    cfg = resolve_config(preset)
    assert (cfg.method, cfg.lambda_graph) == ("ts-me", 0.0)
    if preset != "paper-imagenet":   # stochreg's own choices, not the released code's
        # SparseConvNet's lambda_TS=1, lambda_ME=0.1 and momentum 0.99 in stochreg's normalisation
        assert (cfg.lambda_ts, cfg.lambda_me, cfg.momentum, cfg.views) == (0.1, 0.1, 0.99, 5)
        assert cfg.batch_unlabelled * cfg.views == cfg.batch_labelled   # their half-and-half batch slots


def test_list_names_everything(capsys):
    code, stdout, _ = run_cli(["list"], capsys)
    assert code == 0 and "ts-me" in stdout and "fmp-mnist" in stdout and "paper-mnist" in stdout


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["data", "fetch", "--help"]])
def test_help_everywhere(argv):
    proc = subprocess.run([sys.executable, "-m", "stochreg", *argv], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: stochreg" in proc.stdout


def test_top_level_help_shows_the_own_images_path_in_commands_that_parse(capsys):
    """`stochreg --help` ends with the commands a new user starts from; each one is valid as written."""
    import shlex
    from stochreg.cli import build_parser
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    examples = [line.strip() for line in out.splitlines() if line.startswith("  stochreg ")]
    assert any("train --data photos" in line for line in examples) and any("predict" in line for line in examples)
    for line in examples:
        args = build_parser().parse_args(shlex.split(line)[1:])
        assert args.command in line


@pytest.mark.parametrize("argv, hint", [
    (["predict", "run", "photos", "--out", "p.csv"], "interrupted; the rows of the batches classified so far"),
    (["runs"], "interrupted\n"),
])
def test_ctrl_c_says_what_the_interrupted_command_leaves(argv, hint, capsys, monkeypatch):
    import stochreg.cli.model_commands as model_commands
    import stochreg.cli.tool_commands as tool_commands

    def pressed(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(model_commands, "cmd_predict", pressed)
    monkeypatch.setattr(tool_commands, "cmd_runs", pressed)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith("stochreg: " + hint) and "train --resume" not in err


def test_eval_of_a_missing_run(tmp_path, capsys):
    code, _, stderr = run_cli(["eval", tmp_path / "nothing"], capsys)
    assert code == 2 and "does not exist" in stderr


@pytest.mark.end_to_end
def test_one_forward_pass_per_step(tiny_data_dir, tmp_path, monkeypatch):
    """All n views and the labelled batch go through the network together, once per step."""
    import stochreg.train.state as training
    calls = []
    original = training.build_net

    def counting_net(*args):
        net = original(*args)
        net.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
        return net

    monkeypatch.setattr(training, "build_net", counting_net)
    # the out-of-class scores at the end pass the training images once more: not a step
    monkeypatch.setattr("stochreg.train.loop.score_out_of_class", lambda *args: {})
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--out", str(tmp_path / "r"),
                 *TINY]) == 0
    step_calls = [n for n in calls if n != 50]  # evaluation batches are 50 test images
    assert step_calls == [10 + 3 * 8] * 12      # 10 labelled + 3 views x 8 unlabelled, 12 steps


@pytest.mark.end_to_end
def test_bf16_runs_the_training_forward_passes_in_bfloat16_and_still_learns(tiny_data_dir, tmp_path, monkeypatch):
    """--precision bf16: the training forward passes compute in bfloat16; the weights, the
    checkpoint and the evaluation stay float32; the run learns the tiny problem as fp32 does."""
    import stochreg.train.state as training
    from stochreg.runtime.checkpoints import load_checkpoint
    dtypes = []
    original = training.build_net

    def recording_net(*args):
        net = original(*args)
        net.register_forward_hook(lambda module, inputs, output: dtypes.append((len(inputs[0]), output.dtype)))
        return net

    monkeypatch.setattr(training, "build_net", recording_net)
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "50", "--out", str(out), "--iters", "60",
                 "--batch-labelled", "25", "--batch-unlabelled", "16", "--views", "3", "--eval-every", "0",
                 "--transform", "none", "--lr", "0.05", "--no-progress", "--precision", "bf16"]) == 0
    train_passes = {dtype for n, dtype in dtypes if n == 25 + 3 * 16}
    eval_passes = {dtype for n, dtype in dtypes if n != 25 + 3 * 16}
    assert train_passes == {torch.bfloat16} and eval_passes == {torch.float32}
    assert all(w.dtype == torch.float32 for w in load_checkpoint(out / "checkpoint.pt")["model"].values()
               if w.is_floating_point())
    assert json.loads((out / "results.json").read_text())["test_error"] < 0.5  # chance is 0.9
    assert yaml.safe_load((out / "config.yaml").read_text())["precision"] == "bf16"


@pytest.mark.end_to_end
def test_tta_passes_sets_the_reported_error_and_keeps_the_single_pass_one(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, stderr = run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--out", out, *TINY,
                               "--tta-passes", "4"], capsys)
    assert code == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["tta_passes"] == 4 and 0 <= results["test_error_single_pass"] <= 1
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["test_error"] == results["test_error"]
    assert "averaged over 4 stochastic passes (single pass: " in (out / "summary.md").read_text()
    code, _, _ = run_cli(["train", "--resume", out, "--tta-passes", "8", "--no-progress"], capsys)
    assert code == 0  # a test-time setting: no --force needed


@pytest.mark.end_to_end
def test_validation_split_is_scored_and_never_labelled(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--val-size", "50",
                                    "--out", out, *TINY], capsys)
    assert code == 0, stderr
    validation = json.loads((out / "validation_indices.json").read_text())
    labelled = json.loads((out / "labelled_indices.json").read_text())
    assert len(validation) == 50 and len(labelled) == 20 and not set(validation) & set(labelled)
    results = json.loads((out / "results.json").read_text())
    assert 0 <= results["val_error"] <= 1 and results["val_size"] == 50
    evaluations = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "test_error" in line]
    assert all("val_error" in record for record in evaluations)
    assert "validation error" in stdout
    # without --val-size the split is the one every earlier run had
    again = tmp_path / "plain"
    assert run_cli(["train", "--data-dir", tiny_data_dir, "--labels", "20", "--out", again, *TINY], capsys)[0] == 0
    assert "val_error" not in json.loads((again / "results.json").read_text())


def test_a_misspelt_setting_names_the_closest_one_and_an_unlike_one_only_itself():
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match=r"^unknown config key\(s\): itters \(did you mean iters\?\), "
                                         r"zzzz$"):
        resolve_config(overrides={"itters": 3, "zzzz": 1})
