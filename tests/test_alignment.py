"""Distribution alignment (``--dist-align``): the factors follow the running average of the model's
predictions, aligned pseudo-labels favour the classes it under-predicts, and the average survives a
checkpoint exactly."""
from __future__ import annotations

import pytest
import torch

from stochreg.cli import main
from stochreg.methods.pseudo_label import thresholded_cross_entropy
from stochreg.terms.alignment import DistributionAlignment
from tinydata import unbroken_and_resumed


def test_factors_start_at_one_and_follow_the_running_average():
    alignment = DistributionAlignment(torch.full((4,), 0.25), momentum=0.5)
    assert torch.equal(alignment.factors(), torch.ones(4))
    alignment.observe(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))     # batch mean 0.5, 0.5, 0, 0
    running = torch.tensor([0.375, 0.375, 0.125, 0.125])
    torch.testing.assert_close(alignment.running, running)
    torch.testing.assert_close(alignment.factors(), 0.25 / running)


def test_the_average_stays_a_distribution():
    torch.manual_seed(0)
    alignment = DistributionAlignment(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    for _ in range(50):
        alignment.observe(torch.softmax(torch.randn(8, 4) * 3, dim=-1))
    assert alignment.running.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (alignment.running > 0).all()


def test_aligned_targets_favour_the_under_predicted_class():
    # two images the model calls class 0 at 0.6 against class 1 at 0.4; it predicts class 0 three
    # times as often as the labels say it occurs, class 1 a third as often
    logits = torch.randn(1, 2, 2)
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]])
    factors = torch.tensor([0.5 / 0.75, 0.5 / 0.25])
    as_class_1 = torch.nn.functional.cross_entropy(logits[0], torch.tensor([1, 1]))
    torch.testing.assert_close(thresholded_cross_entropy(logits, probs, 0.5, factors), as_class_1)
    as_class_0 = torch.nn.functional.cross_entropy(logits[0], torch.tensor([0, 0]))
    torch.testing.assert_close(thresholded_cross_entropy(logits, probs, 0.5), as_class_0)
    # uniform factors change nothing, and the threshold applies to the aligned confidence
    torch.testing.assert_close(thresholded_cross_entropy(logits, probs, 0.5, torch.full((2,), 3.0)), as_class_0)
    assert thresholded_cross_entropy(logits, probs, 0.65, factors).item() > 0     # 2/3 after alignment
    assert thresholded_cross_entropy(logits, probs, 0.65).item() == 0


def test_dist_align_is_refused_for_a_method_without_pseudo_labels(tiny_data_dir, tmp_path, capsys):
    code = main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--method", "ts", "--dist-align",
                 "--iters", "2", "--no-progress", "--out", str(tmp_path / "run")])
    assert code != 0
    assert "dist_align" in capsys.readouterr().err


@pytest.mark.parametrize("method, views", [("fixmatch", 2), ("ts-me-fixmatch", 3)])
def test_alignment_state_survives_a_checkpoint_exactly(tiny_data_dir, tmp_path, method, views):
    learner, resumed = unbroken_and_resumed(tiny_data_dir, tmp_path / "state.pt", method=method, views=views,
                                            dist_align=True, threshold=0.2)
    running = learner.terms[0].alignment.running
    assert not torch.equal(running, learner.terms[0].alignment.prior), "nothing was observed: the check is empty"
    assert torch.equal(resumed.terms[0].alignment.running, running)
