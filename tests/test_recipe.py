"""The recipe chosen from the data: which settings the images decide, and which a user's own
choice keeps."""
import dataclasses

import pytest

from stochreg.config import TrainConfig, resolve_config
from stochreg.config.recipe import resolve_data_recipe, resolve_precision, with_saved_choices

GRAY_28, COLOUR_16, COLOUR_32, COLOUR_96 = (1, 28, 28), (3, 16, 16), (3, 32, 32), (3, 96, 96)


@pytest.mark.parametrize("shape, digits, chosen", [
    (GRAY_28, True, ("ts-me-fixmatch", "compact", 6000, 1.0, None)),
    (GRAY_28, False, ("fixmatch", "compact-medium", 9200, 2.0, 0.0)),
    (COLOUR_16, False, ("fixmatch", "compact-medium", 9200, 2.0, 0.0)),
    (COLOUR_32, False, ("fixmatch", "wrn-28-2", 6000, 1.0, None)),
    (COLOUR_96, False, ("supervised", "efficientnet-lite0", 300, 1.0, None)),   # photos: fine-tuned
])
def test_the_images_choose_method_net_steps_unlabelled_weight_and_dropout(shape, digits, chosen):
    cfg, reasons = resolve_data_recipe(TrainConfig(), image_shape=shape, is_digits=digits)
    assert (cfg.method, cfg.net, cfg.iters, cfg.lambda_u, cfg.dropout) == chosen
    assert any(line.startswith("dropout 0:") for line in reasons) == (cfg.dropout == 0.0)
    # every choice that differs from the plain defaults is explained
    assert any(line.startswith(f"net {cfg.net}:") for line in reasons)
    assert any(line.startswith("iters 9200:") for line in reasons) == (cfg.iters == 9200)
    assert any(line.startswith("lambda_u 2:") for line in reasons) == (cfg.lambda_u == 2.0)


def test_a_setting_the_user_gives_is_kept_and_the_rest_still_chosen():
    cfg, _ = resolve_data_recipe(TrainConfig(iters=500), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.iters, cfg.lambda_u) == ("compact-medium", 500, 2.0)
    cfg, _ = resolve_data_recipe(TrainConfig(lambda_u=0.5, net="compact"), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.iters, cfg.lambda_u) == ("compact", 9200, 0.5)
    # a network without a dropout rate keeps none, and a rate the user gives is kept
    cfg, _ = resolve_data_recipe(TrainConfig(net="wrn-28-2"), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.dropout) == ("wrn-28-2", None)
    cfg, _ = resolve_data_recipe(TrainConfig(dropout=0.1), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.dropout) == ("compact-medium", 0.1)


def test_a_method_named_by_the_user_gets_the_plain_defaults():
    """The narrower net, its step count and weight belong to the recipe that chose FixMatch;
    ``--method fixmatch`` on the same images trains as it always did."""
    cfg = resolve_config(overrides={"dataset": "fashion-mnist", "method": "fixmatch"})
    assert (cfg.iters, cfg.lambda_u) == (6000, 1.0)
    cfg, reasons = resolve_data_recipe(cfg, image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.iters, cfg.lambda_u) == ("compact", 6000, 1.0)
    assert not any(line.startswith(("iters", "lambda_u")) for line in reasons)
    # left unresolved, the recipe's settings stay unset until the images are known
    auto = resolve_config(overrides={"dataset": "fashion-mnist"})
    assert (auto.iters, auto.lambda_u) == (None, None)


def test_a_continued_run_takes_the_steps_and_weight_it_chose():
    started, _ = resolve_data_recipe(TrainConfig(), image_shape=GRAY_28, is_digits=False)
    saved = started.to_dict()
    again = with_saved_choices(TrainConfig(), saved)
    assert (again.net, again.iters, again.lambda_u, again.dropout) == ("compact-medium", 9200, 2.0, 0.0)
    # a run saved before the recipe chose the dropout rate had the net's own, and keeps it
    older = {k: v for k, v in saved.items() if k != "dropout"}
    resumed, _ = resolve_data_recipe(with_saved_choices(TrainConfig(), older), image_shape=GRAY_28, is_digits=False)
    assert resumed.dropout is None
    # a step count given on the command line is the user's, not the saved one
    longer = with_saved_choices(dataclasses.replace(TrainConfig(), iters=12000), saved)
    assert (longer.iters, longer.lambda_u) == (12000, 2.0)


@pytest.mark.parametrize("method, digits, native, chosen", [
    ("ts-me-fixmatch", True, True, "bf16"),      # the digit recipe on a CPU with AVX-512 BF16 or AMX
    ("ts-me-fixmatch", True, False, "fp32"),     # elsewhere bf16 is emulated and slower
    ("fixmatch", False, True, "fp32"),           # other recipes were not validated in bf16
    ("ts-me", True, True, "fp32"),
])
def test_an_auto_precision_gives_bf16_only_to_the_digit_recipe_on_a_native_bf16_cpu(method, digits, native, chosen):
    cfg, why = resolve_precision(TrainConfig(method=method), is_digits=digits, native_bf16_cpu=native)
    assert cfg.precision == chosen
    assert (why is not None) == (method == "ts-me-fixmatch" and digits)
    assert why is None or why.startswith(f"precision {chosen}:")
    for given in ("fp32", "bf16"):
        assert resolve_precision(TrainConfig(method=method, precision=given), digits, native) == \
            (TrainConfig(method=method, precision=given), None)


@pytest.mark.parametrize("given, native, chosen", [
    ({}, True, ("bf16", 4800, 4800)),                           # the digit recipe in bfloat16
    ({}, False, ("fp32", 6000, 6000)),                          # float32 where bf16 is emulated
    ({"iters": 20000}, True, ("bf16", 20000, 20000)),           # the fade spans the steps given
    ({"graph_fade_iters": 0}, True, ("bf16", 4800, 0)),         # a fade given is kept
    ({"precision": "bf16"}, True, ("bf16", 6000, 0)),           # a precision given keeps the 6,000 steps
    ({"precision": "fp32"}, True, ("fp32", 6000, 0)),
    ({"precision": "fp32"}, False, ("fp32", 6000, 0)),
    ({"iters": 20000}, False, ("fp32", 20000, 20000)),
])
def test_the_digit_recipe_fades_the_graph_term_over_its_steps_4800_of_them_in_bf16(given, native, chosen):
    for method in ({}, {"method": "ts-me-fixmatch"}):   # chosen from the data, or named as make train does
        cfg = resolve_config(overrides={"dataset": "mnist", **method, **given})
        cfg, reasons = resolve_data_recipe(cfg, image_shape=GRAY_28, is_digits=True, native_bf16_cpu=native)
        assert (cfg.precision, cfg.iters, cfg.graph_fade_iters) == chosen
        recipe_chose = "precision" not in given
        assert any(line.startswith("iters 4800: the digit recipe in bfloat16") for line in reasons) == \
            (recipe_chose and native and "iters" not in given)
        assert any(line.startswith(f"graph_fade_iters {cfg.iters}:") for line in reasons) == \
            (recipe_chose and "graph_fade_iters" not in given)
    # without the graph term there is nothing to fade
    cfg, reasons = resolve_data_recipe(resolve_config(overrides={"lambda_graph": 0}), image_shape=GRAY_28,
                                       is_digits=True, native_bf16_cpu=True)
    assert (cfg.precision, cfg.iters, cfg.graph_fade_iters) == ("bf16", 4800, 0)
    assert not any(line.startswith("graph_fade_iters") for line in reasons)
    # other images keep float32, 6,000 steps and no fade on the same CPU
    cfg, _ = resolve_data_recipe(resolve_config(overrides={"method": "ts-me-fixmatch"}), image_shape=GRAY_28,
                                 is_digits=False, native_bf16_cpu=True)
    assert (cfg.precision, cfg.iters, cfg.graph_fade_iters) == ("fp32", 6000, 0)


@pytest.mark.end_to_end
def test_a_run_saves_the_precision_it_chose_and_its_resume_keeps_it(tiny_data_dir, tmp_path, monkeypatch, capsys):
    import yaml
    import stochreg.train.run_settings as run_settings
    from stochreg.cli import main
    out = tmp_path / "run"
    args = ["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "2", "--batch-labelled", "10",
            "--batch-unlabelled", "8", "--net", "compact-small", "--lambda-graph", "0", "--eval-every", "0",
            "--no-progress", "--out", str(out)]
    monkeypatch.setattr(run_settings, "cpu_computes_bf16", lambda: True)
    assert main([*args, "--checkpoint-every", "1"]) == 0
    printed = capsys.readouterr().out
    assert "recipe: precision bf16: the digit recipe on a CPU that computes bfloat16 natively" in printed
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["precision"], saved["graph_fade_iters"]) == ("bf16", 0)   # no graph term, nothing to fade
    monkeypatch.setattr(run_settings, "cpu_computes_bf16", lambda: False)   # continued on a CPU without bf16
    assert main(["train", "--resume", str(out), "--iters", "3", "--force", "--no-progress"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["precision"], saved["graph_fade_iters"]) == ("bf16", 0)
    assert yaml.safe_load((out / "results.json").read_text())["resumed_at"] == 2   # continued, not restarted
