"""Label propagation over the training images' neighbour graph (graph.py, --lambda-graph): its
parts on data whose answer is known, and the term it adds to a real training step."""
from __future__ import annotations

import json
import re

import pytest
import torch

from stochreg.terms.propagation import knn_graph, principal_components, propagate_labels
from stochreg.losses import weighted_view_cross_entropy
from stochreg.methods import METHODS
from tinydata import tiny_learner


def clusters(per_cluster=30, classes=3, dim=40, spread=0.3, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """``classes`` tight clusters around random directions, as (N, 1, 1, dim) 'images'."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=generator) * 3
    labels = torch.arange(classes).repeat_interleave(per_cluster)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=generator)
    return points.view(-1, 1, 1, dim), labels


def test_one_label_per_cluster_labels_every_point_of_its_cluster():
    images, labels = clusters()
    labelled = torch.tensor([0, 30, 60])  # the first point of each cluster
    graph = propagate_labels(images, labelled, labels[labelled], num_classes=3, k=5)
    assert torch.equal(graph.labels, labels)
    assert ((graph.weights > 0.5) & (graph.weights <= 1)).all()


def test_a_label_travels_along_a_chain_of_neighbours_past_a_nearer_label():
    """Two parallel chains of points, 3 apart, labelled at opposite ends. The unlabelled far end
    of chain 0 is 3 from chain 1's label and 20 from its own, yet propagation follows the chain
    of near neighbours: chain 0 is 0 to its end (nearest-label would call that end 1). So the
    crossed sevens can be reached through intermediate sevens rather than by the nearest twos."""
    dim, steps = 10, 41
    along = torch.linspace(0, 20, steps)                   # 0.5 between neighbours on a chain
    chains = torch.zeros(2 * steps, dim)
    chains[:, 0] = along.repeat(2)
    chains[steps:, 1] = 3.0                                # chain 1 runs parallel, 3 away
    # a far blob moves the mean (propagation works on centred points) well away from the chains,
    # so that their cosine neighbours are their nearest neighbours
    blob = torch.zeros(400, dim)
    blob[:, 2] = -500
    blob[:, 3] = torch.linspace(-1, 1, 400)
    points = torch.cat([chains, blob]).view(-1, 1, 1, dim)
    labelled = torch.tensor([0, 2 * steps - 1])            # chain 0's start, chain 1's end
    graph = propagate_labels(points, labelled, torch.tensor([0, 1]), num_classes=2, k=4, components=dim)
    assert (graph.labels[:steps] == 0).all() and (graph.labels[steps:2 * steps] == 1).all()
    assert (graph.weights[:2 * steps] > 0).all()           # every point reached, none left at 0 by default
    far_end = chains[steps - 1]
    assert (far_end - chains[2 * steps - 1]).norm() < (far_end - chains[0]).norm() / 5


def test_the_result_is_deterministic_and_unreachable_images_get_no_weight():
    images, labels = clusters(per_cluster=10)
    first = propagate_labels(images, torch.tensor([0]), torch.tensor([0]), num_classes=3, k=3)
    again = propagate_labels(images, torch.tensor([0]), torch.tensor([0]), num_classes=3, k=3)
    assert torch.equal(first.labels, again.labels) and torch.equal(first.weights, again.weights)
    # with only cluster 0 labelled and 3 neighbours each, clusters 1 and 2 are cut off from it
    assert (first.weights[10:] == 0).all() and (first.weights[:10] > 0).all()


def test_principal_components_keep_the_directions_of_largest_variance():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(500, 6, generator=generator) * torch.tensor([5.0, 0.1, 3.0, 0.1, 0.1, 0.1])
    projected = principal_components(x, 2)
    assert projected.shape == (500, 2)
    # the two kept axes carry the variance of columns 0 and 2 (25 + 9), nearly all of it
    assert float(projected.var(dim=0).sum()) == pytest.approx(float(x.var(dim=0)[[0, 2]].sum()), rel=0.02)


def test_knn_graph_never_lists_a_point_as_its_own_neighbour():
    images, _ = clusters(per_cluster=8)
    neighbours, similarities = knn_graph(images.flatten(1), k=4, chunk=5)  # chunks that cut clusters
    assert neighbours.shape == (24, 4)
    assert not (neighbours == torch.arange(24)[:, None]).any()
    assert (similarities[:, :-1] >= similarities[:, 1:]).all()  # nearest first


def test_weighted_view_cross_entropy_weighs_each_image():
    logits = torch.randn(3, 4, 5)
    targets = torch.tensor([0, 1, 2, 3])
    full = weighted_view_cross_entropy(logits, targets, torch.ones(4))
    expected = torch.nn.functional.cross_entropy(logits.reshape(12, 5), targets.repeat(3))
    assert float(full) == pytest.approx(float(expected), rel=1e-6)
    only_first = weighted_view_cross_entropy(logits, targets, torch.tensor([1.0, 0, 0, 0]))
    per_view = torch.stack([torch.nn.functional.cross_entropy(logits[v, :1], targets[:1]) for v in range(3)])
    assert float(only_first) == pytest.approx(float(per_view.mean()) / 4, rel=1e-6)


@pytest.mark.parametrize("name", ["ts-me", "ts-me-fixmatch"])
def test_the_graph_term_joins_a_training_step_with_labels_from_the_real_split(name, tiny_data_dir):
    learner, data, labelled = tiny_learner(tiny_data_dir, method=name, lambda_graph=1.0)
    graph_labels, weights = learner.term("graph").targets, learner.term("graph").confidence
    assert torch.equal(graph_labels[labelled], data.train_labels[labelled])
    # 20 labels spread over 200 synthetic digits: far better than the 10% of chance
    assert (graph_labels == data.train_labels).float().mean() > 0.5
    losses, _ = learner.step(0)
    assert set(losses) == {"ce", *METHODS.get(name).terms, "graph"}
    assert torch.isfinite(losses["graph"]) and losses["graph"] > 0


def test_the_default_recipe_chooses_the_graph_term_from_the_labels_and_zero_turns_it_off(tiny_data_dir, monkeypatch):
    import stochreg.terms.graph
    from stochreg.config import TrainConfig
    from stochreg.config.recipe import GRAPH_WEIGHT
    assert TrainConfig().lambda_graph is None   # auto: weight 3 where the labelled split's check passes
    # the tiny digits' noise keeps propagation from 2 labels a class at 80% on the hidden labels: no graph
    learner, _, _ = tiny_learner(tiny_data_dir, lambda_graph=None)
    assert learner.cfg.lambda_graph == 0 and learner.term("graph") is None
    assert any(reason.startswith("lambda_graph 0:") and "80.0%" in reason and "under the 90%" in reason
               for reason in learner.recipe)
    monkeypatch.setattr(stochreg.terms.graph, "held_out_accuracy", lambda *args, **kwargs: 0.95)
    learner, _, _ = tiny_learner(tiny_data_dir, lambda_graph=None)
    assert learner.cfg.lambda_graph == GRAPH_WEIGHT and learner.term("graph") is not None
    assert any(reason.startswith("lambda_graph 3:") and "at least the 90%" in reason for reason in learner.recipe)
    learner, _, _ = tiny_learner(tiny_data_dir, lambda_graph=0.0)
    assert learner.term("graph") is None
    losses, _ = learner.step(0)
    assert "graph" not in losses


def test_the_graph_fade_is_a_half_cosine_to_zero_then_zero():
    from stochreg.config import TrainConfig
    from stochreg.terms.schedule import graph_fade
    assert [graph_fade(TrainConfig(graph_fade_iters=0), step) for step in (0, 10 ** 6)] == [1.0, 1.0]
    cfg = TrainConfig(graph_fade_iters=100)
    values = [graph_fade(cfg, step) for step in range(0, 121)]
    assert values[0] == 1.0 and values[50] == pytest.approx(0.5) and values[100:] == [0.0] * 21
    assert all(a > b for a, b in zip(values[:100], values[1:101]))     # falls at every step until 0


def test_a_faded_graph_term_leaves_the_step(tiny_data_dir):
    """Before the fade's end the term is in the loss (and logged); from its end on it is not
    computed at all, and the step is the same as without the graph."""
    learner, _, _ = tiny_learner(tiny_data_dir, lambda_graph=1.0, graph_fade_iters=2)
    assert "graph" in learner.step(1)[0]
    assert "graph" not in learner.step(2)[0]


def test_images_less_confident_than_graph_min_confidence_get_no_graph_term(tiny_data_dir, monkeypatch):
    """The threshold zeroes the weights under it and keeps the others and every label as they were
    (the tiny digits propagate with full confidence, so the propagation here spreads its weights)."""
    import stochreg.terms.graph
    from stochreg.terms.propagation import GraphLabels

    def spread(graph, *args, **kwargs):
        n = len(graph.scale)
        return GraphLabels(labels=torch.arange(n) % 10, weights=torch.linspace(0, 1, n))
    monkeypatch.setattr(stochreg.terms.graph, "spread", spread)
    plain, _, _ = tiny_learner(tiny_data_dir, lambda_graph=1.0)
    strict, _, _ = tiny_learner(tiny_data_dir, lambda_graph=1.0, graph_min_confidence=0.5)
    (labels, weights), (strict_labels, strict_weights) = [(learner.term("graph").targets, learner.term("graph").confidence) for learner in (plain, strict)]
    assert torch.equal(strict_labels, labels)
    kept = weights >= 0.5
    assert torch.equal(strict_weights[kept], weights[kept]) and not strict_weights[~kept].any()
    assert 0 < int(kept.sum()) < len(weights)


@pytest.mark.parametrize("value", [-0.1, 1.0, 2.0])
def test_a_graph_min_confidence_outside_0_1_is_refused(value):
    from stochreg.config import resolve_config
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match=r"graph_min_confidence must be in \[0, 1\)"):
        resolve_config(overrides={"graph_min_confidence": value})


def test_a_negative_fade_is_refused():
    from stochreg.config import resolve_config
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match="graph_fade_iters must be >= 0"):
        resolve_config(overrides={"graph_fade_iters": -1})


@pytest.mark.end_to_end
def test_a_run_with_the_graph_term_reports_its_cost(tiny_data_dir, tmp_path, capsys):
    from stochreg.cli import main
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "2", "--views", "3",
                 "--batch-labelled", "10", "--batch-unlabelled", "8", "--net", "compact-small", "--eval-every", "0",
                 "--no-progress", "--lambda-graph", "1", "--graph-fade-iters", "500", "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 <= results["graph_seconds"] < 60
    assert "label propagation over the 200 training images" in capsys.readouterr().out
    assert "label-propagation graph: lambda=1.0 fading to 0 at step 500" in (tmp_path / "run" / "summary.md").read_text()


@pytest.mark.end_to_end
def test_too_many_images_for_the_dense_graph_is_one_clear_error(tiny_data_dir, monkeypatch, capsys):
    from stochreg.terms import propagation as graph
    from stochreg.cli import main
    monkeypatch.setattr(graph, "MAX_GRAPH_IMAGES", 150)  # the tiny data has 200 training images
    code = main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "1", "--no-progress",
                 "--lambda-graph", "1", "--out", str(tiny_data_dir / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "200 training images are more than the 150 it handles; add --lambda-graph 0" in err[0]


def test_the_paper_presets_leave_the_graph_out():
    from stochreg.config import PRESETS, resolve_config
    for name in PRESETS:
        if name.startswith("paper-"):
            assert resolve_config(name).lambda_graph == 0, name


def test_large_images_are_averaged_down_before_the_graph_is_built():
    """A 3x224x224 image has 150,528 pixels: their covariance would not fit in memory. The graph
    is built on the images averaged down to 32 px a side, which keeps a coarse class signal."""
    generator = torch.Generator().manual_seed(3)
    labels = torch.arange(2).repeat_interleave(12)
    images = (torch.rand(24, 3, 224, 224, generator=generator) * 60).to(torch.uint8)
    images[labels == 1, :, :112] += 150   # class 1: a bright top half
    graph = propagate_labels(images, torch.tensor([0, 12]), torch.tensor([0, 1]), num_classes=2, k=3)
    assert torch.equal(graph.labels, labels)


def test_fewer_images_than_pixels_give_the_same_components_from_the_gram_matrix():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(20, 50, generator=generator, dtype=torch.float64) * torch.linspace(3, 0.1, 50, dtype=torch.float64)
    wide = principal_components(x, 5)                  # 20 rows < 50 pixels: the Gram matrix
    tall = principal_components(torch.cat([x, x]), 5)[:20]  # the same rows twice: 40 < 50 still
    padded = torch.cat([x, x.mean(0, keepdim=True).expand(40, 50)])  # 60 rows >= 50: the covariance
    from_covariance = principal_components(padded, 5)[:20]
    for projections in (wide, tall):
        signs = torch.sign((projections * from_covariance).sum(0))
        assert torch.allclose(projections * signs, from_covariance, atol=1e-6)


@pytest.mark.end_to_end
def test_a_run_goes_on_after_the_graph_term_leaves_the_step(tiny_data_dir, tmp_path, capsys):
    """The watch for non-finite losses follows the terms by name: the faded term leaving the
    step mid-run once crashed it at that step."""

    from stochreg.cli import main
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--out", str(out), "--iters", "22",
                 "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3", "--eval-every", "0",
                 "--eval-batch", "50", "--rampup-iters", "2", "--no-progress", "--net", "compact-small",
                 "--lambda-graph", "1", "--graph-fade-iters", "3", "--checkpoint-every", "1"]) == 0
    logged = {row["step"]: row for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert "graph" in logged[1] and "graph" not in logged[21] and (out / "checkpoint.pt").exists()


def test_the_watch_names_a_term_that_joined_late_and_ignores_one_that_left():
    from stochreg.errors import StochregError
    from stochreg.train.watch import NonFiniteWatch

    class OneProcess:
        def min(self, t):
            return t

        def max(self, t):
            return t

    watch = NonFiniteWatch(torch.device("cpu"), OneProcess())
    watch.observe(1, {"ce": torch.tensor(1.0), "graph": torch.tensor(0.5)})
    watch.observe(2, {"ce": torch.tensor(1.0)})
    watch.check("none")                                   # a term that left is not an error
    watch.observe(3, {"ce": torch.tensor(1.0), "late": torch.tensor(float("nan"))})
    with pytest.raises(StochregError, match="loss term late became NaN or infinite at step 3"):
        watch.check("none")


def slanted_strokes(strokes: int, slant: float, side: int = 28) -> torch.Tensor:
    """A (1, side, side) image of ``strokes`` parallel 2-pixel strokes, x = x0 + slant * (y - centre)."""
    image = torch.zeros(1, side, side)
    centre = (side - 1) / 2
    firsts = [centre - 3 * (strokes - 1) + 6 * k for k in range(strokes)]
    for y in range(5, side - 5):  # rows 5..22: centred on the image's centre
        for x0 in firsts:
            x = round(x0 + slant * (y - centre))
            image[0, y, x - 1:x + 1] = 1.0
    return image


def shear_moment(images: torch.Tensor) -> torch.Tensor:
    """mu11 / mu02 of each (1, H, W) image: 0 for an upright stroke."""
    img = images[:, 0]
    ys, xs = torch.meshgrid(torch.arange(img.shape[1], dtype=img.dtype), torch.arange(img.shape[2], dtype=img.dtype),
                            indexing="ij")
    mass = img.sum(dim=(1, 2))
    dx = xs - ((img * xs).sum(dim=(1, 2)) / mass)[:, None, None]
    dy = ys - ((img * ys).sum(dim=(1, 2)) / mass)[:, None, None]
    return (img * dx * dy).sum(dim=(1, 2)) / (img * dy * dy).sum(dim=(1, 2))


def test_deskewing_stands_slanted_strokes_upright_and_centres_them():
    from stochreg.terms.propagation import deskew
    images = torch.stack([slanted_strokes(1, s) for s in (-0.5, -0.2, 0.0, 0.3, 0.5)] + [torch.zeros(1, 28, 28)])
    straight = deskew(images)
    assert shear_moment(images[:5]).abs().max() > 0.45
    assert shear_moment(straight[:5]).abs().max() < 0.05
    # the upright stroke is left where it was; the blank image stays blank
    assert torch.allclose(straight[2], images[2], atol=1e-5)
    assert straight[5].abs().max() == 0
    # mass is kept (bilinear resampling of a sheared stroke moves it, does not lose it)
    assert torch.allclose(straight[:5].sum(dim=(1, 2, 3)), images[:5].sum(dim=(1, 2, 3)), rtol=0.05)


def test_deskewed_propagation_tells_one_stroke_from_two_whatever_their_slant():
    """One labelled upright example per class (one stroke, two strokes); the others slanted by up
    to 0.6. In raw pixels a slanted image's neighbours are images of the same slant, whatever the
    class; upright, the classes separate."""
    slants = torch.linspace(-0.6, 0.6, 25)
    images = torch.stack([slanted_strokes(strokes, float(s)) for strokes in (1, 2) for s in slants])
    labels = torch.arange(2).repeat_interleave(len(slants))
    labelled = torch.tensor([12, 37])                      # the slant-0 image of each class
    raw = propagate_labels(images, labelled, labels[labelled], 2, k=4, components=20)
    upright = propagate_labels(images, labelled, labels[labelled], 2, k=4, components=20, deskew_images=True)
    assert (upright.labels == labels).float().mean() == 1.0
    assert (raw.labels == labels).float().mean() < 0.9


def test_deskewing_refuses_colour_images():
    """(The command line's one-line error for --graph-deskew on colour data: test_bad_inputs.py.)"""
    from stochreg.terms.propagation import deskew
    with pytest.raises(ValueError, match="single-channel"):
        deskew(torch.zeros(2, 3, 8, 8))


@pytest.mark.end_to_end
def test_the_default_deskews_single_channel_images_only_and_false_turns_it_off(tiny_data_dir, tmp_path):
    """Unset (the default) deskews the graph of single-channel digits (MNIST), not colour images'
    (where --graph-deskew is refused) nor other data's; --no-graph-deskew builds it on the raw pixels."""
    from stochreg.cli import main
    from stochreg.config import TrainConfig
    from tinydata import write_cifar
    assert TrainConfig().graph_deskew is None  # joined the default by a rule of tuning.md
    assert tiny_learner(tiny_data_dir, lambda_graph=1.0)[0].term("graph").deskewed is True
    assert tiny_learner(tiny_data_dir, lambda_graph=1.0, graph_deskew=False)[0].term("graph").deskewed is False
    # single-channel but not digits (as Fashion-MNIST): raw pixels unless asked
    import dataclasses
    _, data, _ = tiny_learner(tiny_data_dir)
    clothes = dataclasses.replace(data, is_digits=False)
    for setting, expected in ((None, False), (True, True)):
        learner, _, _ = tiny_learner(tiny_data_dir, data=clothes, lambda_graph=1.0, graph_deskew=setting)
        assert learner.term("graph").deskewed is expected
    write_cifar(tmp_path / "data" / "cifar10", "cifar10")
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--labels", "20", "--iters", "1",
                 "--views", "3", "--batch-labelled", "10", "--batch-unlabelled", "8", "--net", "compact-small",
                 "--eval-every", "0", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["graph_deskewed"] is False
    assert "(deskewed images)" not in (tmp_path / "run" / "summary.md").read_text()


@pytest.mark.end_to_end
def test_a_run_with_the_deskewed_graph_trains_and_says_so(tiny_data_dir, tmp_path):
    from stochreg.cli import main
    learner, data, labelled = tiny_learner(tiny_data_dir, lambda_graph=1.0, graph_deskew=True)
    assert learner.term("graph").deskewed is True
    graph_labels, _ = learner.term("graph").targets, learner.term("graph").confidence
    assert torch.equal(graph_labels[labelled], data.train_labels[labelled])
    assert (graph_labels == data.train_labels).float().mean() > 0.5
    assert torch.isfinite(learner.step(0)[0]["graph"])
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "1", "--views", "3",
                 "--batch-labelled", "10", "--batch-unlabelled", "8", "--net", "compact-small", "--eval-every", "0",
                 "--no-progress", "--lambda-graph", "1", "--graph-deskew", "--out", str(tmp_path / "run")]) == 0
    summary = (tmp_path / "run" / "summary.md").read_text()   # the bfloat16 digit recipe fades the term too
    assert re.search(r"label-propagation graph: lambda=1\.0( fading to 0 at step 1)? \(deskewed images\)", summary)


def test_held_out_accuracy_of_clusters_that_propagate_and_of_labels_that_do_not():
    from stochreg.terms.propagation import held_out_accuracy, neighbour_graph
    torch.manual_seed(0)
    centres = torch.eye(3) * 10
    points = (centres.repeat_interleave(30, 0) + torch.randn(90, 3)).view(90, 1, 1, 3)
    labelled = torch.arange(0, 90, 3)                      # 10 labelled points of each cluster
    graph = neighbour_graph(points, k=5, components=3)
    truth = torch.arange(90) // 30
    assert held_out_accuracy(graph, labelled, truth[labelled], 3) == 1.0
    shuffled = truth[labelled][torch.randperm(30, generator=torch.Generator().manual_seed(1))]
    assert held_out_accuracy(graph, labelled, shuffled, 3) < 0.6   # labels unrelated to the neighbours
