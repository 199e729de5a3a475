"""``stochreg show-views``: a PNG grid of a few training images and their n stochastic views,
made exactly as training makes them, to check that the transformations keep the class.

Row i shows image i, then its n views; the images are enlarged ``scale`` times (nearest pixel).
For a method with strong views (ts-me-fixmatch, the default, and fixmatch...) the last views are
also strongly augmented (RandAugment-style), as training makes them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data import load_dataset
from ..data.images import images_to_float
from ..data.images import write_png
from ..methods import METHODS
from ..config.recipe import resolve_data_recipe
from ..train.run_data import as_digits_given, image_options
from ..train.view_plan import ViewPlan
from ..augment.transforms import TRANSFORMS

PAD = 2  # pixels of grey between cells


def views_grid(originals: torch.Tensor, views: torch.Tensor, scale: int = 3) -> np.ndarray:
    """uint8 grid: originals (K, C, H, W) in the first column, views (n, K, C, H, W) after them."""
    n, k, c, h, w = views.shape
    cells = torch.cat([originals[None], views]).permute(1, 0, 3, 4, 2)  # (K, n+1, H, W, C)
    cells = cells.repeat_interleave(scale, 2).repeat_interleave(scale, 3).numpy()
    ch, cw = h * scale, w * scale
    grid = np.full((k * (ch + PAD) + PAD, (n + 1) * (cw + PAD) + PAD, c), 128, dtype=np.uint8)
    for i in range(k):
        for j in range(n + 1):
            top, left = PAD + i * (ch + PAD), PAD + j * (cw + PAD)
            grid[top:top + ch, left:left + cw] = cells[i, j]
    return grid[..., 0] if c == 1 else grid


def show_views(cfg: TrainConfig, count: int, seed: int, out: str | Path, scale: int = 3) -> tuple[Path, TrainConfig]:
    """Writes the grid to ``out``; returns it and the settings it used (the auto ones resolved from the data)."""
    # stream: of the user's own images only the chosen few are decoded
    data = as_digits_given(load_dataset(cfg.dataset, cfg.data_dir, **{**image_options(cfg), "stream": True}), cfg)
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(data.train_images), generator=gen)[:count]
    originals = data.train_images[chosen]
    cfg = resolve_data_recipe(cfg, data.image_shape, data.is_digits)[0]
    transform = TRANSFORMS.get(cfg.transform)
    # the views as a step makes them: no labelled rows, then the chosen images n times (view-major)
    plan = ViewPlan(cfg, METHODS.get(cfg.method), 0, len(originals), torch.device("cpu"))
    views = plan.apply(images_to_float(originals).repeat(cfg.views, 1, 1, 1), gen)
    # a transformation with a canvas enlarges the views: the originals are shown on the same canvas
    originals = torch.nn.functional.pad(originals, (transform.canvas,) * 4)
    views = (views.clamp(0, 1) * 255).round().to(torch.uint8).view(cfg.views, *originals.shape)
    if originals.shape[1] == 2:  # a stereo pair (NORB): show the first camera
        originals, views = originals[:, :1], views[:, :, :1]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_png(views_grid(originals, views, scale), out)
    return out, cfg
