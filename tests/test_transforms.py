"""Stochastic transformations: shapes, identity at zero strength, replay, per-sample randomness."""
from __future__ import annotations

import pytest
import torch

from stochreg.augment.transforms import TRANSFORMS, AffineAugment


def params_for(batch, **values):
    params = {"scale": torch.ones(batch, 2), "alpha": torch.zeros(batch), "kind": torch.zeros(batch, dtype=torch.long),
              "shift": torch.zeros(batch, 2), "flip": torch.zeros(batch, dtype=torch.bool)}
    params.update(values)
    return params


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_shape_dtype_and_device_are_kept(name):
    x = torch.rand(12, 3, 32, 32)
    aug = TRANSFORMS.get(name)
    y = aug(x, torch.Generator().manual_seed(0))
    grown = 2 * aug.canvas  # a canvas enlarges every side
    assert y.shape == (12, 3, 32 + grown, 32 + grown) and y.dtype == x.dtype and y.device == x.device


def test_zero_strength_warp_is_identity():
    x = torch.rand(6, 1, 28, 28)
    aug = AffineAugment(stretch=0.2)
    assert torch.allclose(aug.apply(x, params_for(6)), x, atol=1e-5)
    assert AffineAugment()(x) is x


def test_replay_gives_the_same_views():
    aug, x = TRANSFORMS.get("digits"), torch.rand(16, 1, 28, 28)
    params = aug.sample(16, torch.Generator().manual_seed(1))
    assert torch.equal(aug.apply(x, params), aug.apply(x, params))
    again = aug.sample(16, torch.Generator().manual_seed(1))
    assert all(torch.equal(params[k], again[k]) for k in params)


def test_every_view_draws_its_own_transformation():
    aug = TRANSFORMS.get("digits")
    x = torch.rand(1, 1, 28, 28).repeat(8, 1, 1, 1)  # 8 copies of one image
    views = aug(x, torch.Generator().manual_seed(0))
    distinct = {tuple(v.flatten()[:50].tolist()) for v in views}
    assert len(distinct) == 8


def test_parameters_stay_in_their_ranges():
    aug = AffineAugment(stretch=0.2, deform=0.2, translate=2.0)
    p = aug.sample(10_000, torch.Generator().manual_seed(0))
    assert p["scale"].min() >= 0.8 and p["scale"].max() <= 1.2
    assert p["alpha"].abs().max() <= 0.2 and p["shift"].abs().max() <= 2.0
    assert set(p["kind"].tolist()) == {0, 1, 2} and not p["flip"].any()


def test_translation_moves_content_by_whole_pixels():
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, 3, 3] = 1
    y = AffineAugment(translate=1).apply(x, params_for(1, shift=torch.tensor([[1.0, -1.0]])))
    assert y[0, 0, 2, 4] == pytest.approx(1.0) and y.sum() == pytest.approx(1.0)


def test_flip_mirrors_horizontally():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    y = AffineAugment(hflip=True).apply(x, params_for(1, flip=torch.tensor([True])))
    assert torch.allclose(y, x.flip(-1), atol=1e-4)


def test_rotation_by_quarter_turn():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 4] = 1  # right of centre
    y = AffineAugment(deform=2).apply(x, params_for(1, alpha=torch.tensor([torch.pi / 2]),
                                                    kind=torch.tensor([2])))
    assert y[0, 0, 4, 2] == pytest.approx(1.0, abs=1e-4)  # y axis points down: now below centre


def test_slant_shears_along_x():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 4, 2] = 1  # two rows below centre
    y = AffineAugment(deform=1).apply(x, params_for(1, alpha=torch.tensor([0.5]), kind=torch.tensor([0])))
    assert y[0, 0, 4, 3] == pytest.approx(1.0, abs=1e-4)  # x' = x + 0.5 * (y - 2)


@pytest.mark.parametrize("bad", [dict(stretch=-0.1), dict(translate=float("nan")), dict(stretch=1.0)])
def test_invalid_strengths_are_refused(bad):
    with pytest.raises(ValueError):
        AffineAugment(**bad)


def test_cutout_zeroes_one_square_per_image_and_nothing_else():
    aug = AffineAugment(cutout=6)
    x = torch.ones(16, 1, 28, 28)
    params = aug.sample(len(x), torch.Generator().manual_seed(0))
    out = aug.apply(x, params)
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert ((zeros > 0) & (zeros <= 36)).all()   # a 6x6 square, clipped at the borders
    assert (zeros == 36).any()                    # and whole when it lies inside
    assert set(out.unique().tolist()) == {0.0, 1.0}
    cx, cy = (params["cutout_centre"][0] * 28).tolist()
    assert out[0, 0, int(cy), int(cx)] == 0       # the square is where its centre was drawn


def test_cutout_does_not_change_the_other_transforms_random_draws():
    """Adding the cutout parameters last keeps every earlier parameter the same for a seed."""
    plain = TRANSFORMS.get("digits").sample(8, torch.Generator().manual_seed(3))
    with_cutout = TRANSFORMS.get("digits-cutout").sample(8, torch.Generator().manual_seed(3))
    assert all(torch.equal(plain[k], with_cutout[k]) for k in plain)


def test_canvas_pads_before_the_warp_so_a_large_shift_keeps_the_whole_image():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 2:6, 2:6] = 1
    aug = AffineAugment(translate=4, canvas=4)
    params = aug.sample(1, torch.Generator().manual_seed(0))
    params["shift"] = torch.tensor([[4.0, -4.0]])
    y = aug.apply(x, params)
    assert y.shape == (1, 1, 16, 16) and float(y.sum()) == pytest.approx(16, abs=1e-4)  # nothing lost
    assert float(y[0, 0, 2:6, 10:14].sum()) == pytest.approx(16, abs=1e-4)


def test_colour_distortion_scales_channels_independently_within_range():
    x = torch.full((64, 3, 4, 4), 0.5)
    y = AffineAugment(colour=0.2)(x, torch.Generator().manual_seed(1))
    assert y.min() >= 0.5 * 0.8 - 0.1 - 1e-6 and y.max() <= 0.5 * 1.2 + 0.1 + 1e-6
    per_channel = y.mean(dim=(2, 3))
    assert (per_channel[:, 0] - per_channel[:, 1]).abs().max() > 0.01  # channels differ: colour, not just brightness
