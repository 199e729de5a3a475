"""FlexMatch's curriculum thresholds (``--flex-threshold``): the per-class thresholds follow what
the pool's kept predictions say, masks use them, and their state survives a checkpoint exactly."""
from __future__ import annotations

import pytest
import torch

from stochreg.cli import main
from stochreg.methods import METHODS
from stochreg.methods.pseudo_label import thresholded_cross_entropy
from stochreg.terms.curriculum import CurriculumThresholds
from tinydata import unbroken_and_resumed


def confident(labels: list[int], confidence: float, classes: int = 3) -> torch.Tensor:
    """(B, C) probabilities: ``confidence`` on each label, the rest spread evenly."""
    probs = torch.full((len(labels), classes), (1 - confidence) / (classes - 1))
    probs[torch.arange(len(labels)), torch.tensor(labels)] = confidence
    return probs


def test_thresholds_start_at_zero_and_reach_tau_for_the_most_learned_class():
    curriculum = CurriculumThresholds(pool_size=10, num_classes=3, threshold=0.9, device=torch.device("cpu"))
    assert torch.equal(curriculum.thresholds(), torch.zeros(3))
    # images 0-3 confidently class 0, 4 class 1, 5 unsure: 5 images kept as no class
    curriculum.observe(torch.arange(6), torch.cat([confident([0, 0, 0, 0, 1], 0.95), confident([2], 0.5)]))
    share = torch.tensor([4 / 5, 1 / 5, 0.0])
    torch.testing.assert_close(curriculum.thresholds(), 0.9 * share / (2 - share))
    curriculum.observe(torch.arange(5, 10), confident([0] * 5, 0.95))
    share = torch.tensor([1.0, 1 / 9, 0.0])
    torch.testing.assert_close(curriculum.thresholds(), 0.9 * share / (2 - share))
    assert curriculum.thresholds().max() == pytest.approx(0.9)


def test_an_unsure_prediction_keeps_the_last_confident_class():
    curriculum = CurriculumThresholds(pool_size=4, num_classes=3, threshold=0.9, device=torch.device("cpu"))
    curriculum.observe(torch.tensor([0, 1]), confident([2, 1], 0.95))
    curriculum.observe(torch.tensor([0, 1]), confident([0, 0], 0.6))
    assert curriculum.kept.tolist() == [2, 1, -1, -1]
    curriculum.observe(torch.tensor([1]), confident([0], 0.99))
    assert curriculum.kept.tolist() == [2, 0, -1, -1]


def test_per_class_thresholds_mask_by_the_target_class():
    torch.manual_seed(0)
    logits, probs = torch.randn(2, 6, 3), torch.softmax(torch.randn(6, 3) * 3, dim=-1)
    for t in (0.0, 0.4, 0.7, 1.0):
        assert torch.equal(thresholded_cross_entropy(logits, probs, torch.full((3,), t)),
                           thresholded_cross_entropy(logits, probs, t))
    # a class whose threshold is 0 passes every image predicted as it; the others none
    open_class = int(probs.argmax(dim=-1)[0])
    only = torch.ones(3)
    only[open_class] = 0
    picked = probs.argmax(dim=-1) == open_class
    expected = torch.nn.functional.cross_entropy(logits[:, picked].reshape(-1, 3),
                                                 torch.full((2 * int(picked.sum()),), open_class), reduction="sum")
    torch.testing.assert_close(thresholded_cross_entropy(logits, probs, only), expected / (2 * 6))


@pytest.mark.parametrize("method, views, weak", [("fixmatch", 3, 1), ("ts-me-fixmatch", 4, 3), ("pseudo-label", 3, 1)])
def test_pseudo_labels_come_from_the_weak_views(method, views, weak):
    logits = torch.randn(views, 5, 4)
    expected = torch.softmax(logits[:weak], dim=-1).mean(dim=0)
    torch.testing.assert_close(METHODS.get(method).pseudo_label_probabilities(logits), expected)


def test_flex_threshold_is_refused_for_a_method_without_a_threshold(tiny_data_dir, tmp_path, capsys):
    code = main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--method", "ts", "--flex-threshold",
                 "--iters", "2", "--no-progress", "--out", str(tmp_path / "run")])
    assert code != 0
    assert "flex_threshold" in capsys.readouterr().err


def test_curriculum_state_survives_a_checkpoint_exactly(tiny_data_dir, tmp_path):
    learner, resumed = unbroken_and_resumed(tiny_data_dir, tmp_path / "state.pt", method="fixmatch", views=2,
                                            flex_threshold=True, threshold=0.2)
    kept = learner.terms[0].curriculum.kept
    assert (kept >= 0).any(), "no prediction was kept: the check would be empty"
    assert torch.equal(resumed.terms[0].curriculum.kept, kept)
