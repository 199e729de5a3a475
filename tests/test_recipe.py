"""The recipe chosen from the data: which settings the images decide, and which a user's own
choice keeps."""
import dataclasses

import pytest

from stochreg.config import TrainConfig, resolve_config
from stochreg.config.recipe import resolve_data_recipe, with_saved_choices

GRAY_28, COLOUR_16, COLOUR_32, COLOUR_96 = (1, 28, 28), (3, 16, 16), (3, 32, 32), (3, 96, 96)


@pytest.mark.parametrize("shape, digits, chosen", [
    (GRAY_28, True, ("ts-me-fixmatch", "compact", 6000, 1.0)),
    (GRAY_28, False, ("fixmatch", "compact-medium", 9200, 2.0)),
    (COLOUR_16, False, ("fixmatch", "compact-medium", 9200, 2.0)),
    (COLOUR_32, False, ("fixmatch", "wrn-28-2", 6000, 1.0)),
    (COLOUR_96, False, ("fixmatch", "resnet18", 6000, 1.0)),
])
def test_the_images_choose_method_net_steps_and_unlabelled_weight(shape, digits, chosen):
    cfg, reasons = resolve_data_recipe(TrainConfig(), image_shape=shape, is_digits=digits)
    assert (cfg.method, cfg.net, cfg.iters, cfg.lambda_u) == chosen
    # every choice that differs from the plain defaults is explained
    assert any(line.startswith(f"net {cfg.net}:") for line in reasons)
    assert any(line.startswith("iters 9200:") for line in reasons) == (cfg.iters == 9200)
    assert any(line.startswith("lambda_u 2:") for line in reasons) == (cfg.lambda_u == 2.0)


def test_a_setting_the_user_gives_is_kept_and_the_rest_still_chosen():
    cfg, _ = resolve_data_recipe(TrainConfig(iters=500), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.iters, cfg.lambda_u) == ("compact-medium", 500, 2.0)
    cfg, _ = resolve_data_recipe(TrainConfig(lambda_u=0.5, net="compact"), image_shape=GRAY_28, is_digits=False)
    assert (cfg.net, cfg.iters, cfg.lambda_u) == ("compact", 9200, 0.5)


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
    assert (again.net, again.iters, again.lambda_u) == ("compact-medium", 9200, 2.0)
    # a step count given on the command line is the user's, not the saved one
    longer = with_saved_choices(dataclasses.replace(TrainConfig(), iters=12000), saved)
    assert (longer.iters, longer.lambda_u) == (12000, 2.0)
