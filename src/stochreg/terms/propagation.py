"""Label propagation over a nearest-neighbour graph of the training images (--lambda-graph).

Before training, the labelled split's labels are spread over a k-nearest-neighbour graph of all
training images in pixel space (Zhou et al. 2004, "Learning with local and global consistency";
used as pseudo-labels for a network by Iscen et al. 2019). The result, one label and one
confidence per training image, is a target the network's predictions on the unlabelled views are
pulled toward, beside the method's own terms.

Why: the network's own consistency terms spread a label along what its transformations and
features call similar. Where a whole style of a class has no labelled example (MNIST's crossed
sevens in a split whose labelled sevens are all plain), they can hand the style to the wrong
class, while in pixel space that style's nearest neighbours are still of its own class
(benchmarks/tuning.md).

With ``deskew`` (--graph-deskew, single-channel images such as digits), each image is first
sheared upright about its centre of mass (the classic moment-based deskewing of MNIST): slant is
a style, not a class, and in raw pixels a slanted digit sits nearer to slanted digits of other
classes than to upright ones of its own.

Cost: one pass of dense similarities, O(N^2 d) with d = ``components`` (about 10 s for MNIST's
60,000 images on 2 CPU cores), and N x k memory. Deterministic: exact PCA (an eigendecomposition
of the pixel covariance), no random projection.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.images import images_to_float

# Above this many training images the dense similarity pass takes too long to be a sensible
# preamble on a CPU (it grows as N^2).
MAX_GRAPH_IMAGES = 200_000
# Larger images are averaged down to this side first: the principal components need a D x D
# covariance (D = channels x side^2), and the graph only needs the coarse shapes.
MAX_GRAPH_SIDE = 32


@dataclass(frozen=True)
class GraphLabels:
    """Label propagation's result for every training image: the argmax class and a weight in
    [0, 1], 1 - entropy / log C of the normalised scores (0 where the graph cannot tell)."""

    labels: torch.Tensor    # (N,) int64
    weights: torch.Tensor   # (N,) float32


def principal_components(x: torch.Tensor, components: int) -> torch.Tensor:
    """Rows of ``x`` (N, D) centred and projected on their ``components`` leading principal axes.
    Exact either way: from the D x D covariance, or, when there are fewer rows than pixels, from
    the N x N Gram matrix (its eigenvectors scaled by the square roots of the eigenvalues are
    the same projections, up to each axis's sign), whichever is smaller."""
    x = x - x.mean(dim=0)
    keep = min(components, *x.shape)
    if len(x) < x.shape[1]:
        values, vectors = torch.linalg.eigh((x @ x.T).double())   # ascending eigenvalues
        return (vectors[:, -keep:] * values[-keep:].clamp_min(0).sqrt()).to(x.dtype)
    _, vectors = torch.linalg.eigh((x.T @ x).double() / len(x))
    return x @ vectors[:, -keep:].to(x.dtype)


def deskew(x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Single-channel images ``x`` (N, 1, H, W, float) sheared so that their principal stroke
    stands upright and their centre of mass sits at the image centre: the shear is the ratio of
    the second-order moments mu11 / mu02 (x against y about the centre of mass). Blank images
    stay blank."""
    if x.shape[1] != 1:
        raise ValueError(f"deskewing is for single-channel images (digits); these have {x.shape[1]} channels")
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    centre_x, centre_y = (w - 1) / 2, (h - 1) / 2
    out = torch.empty_like(x)
    for start in range(0, n, chunk):
        img = x[start:start + chunk, 0]
        mass = img.sum(dim=(1, 2)).clamp_min(1e-12)
        cx = (img * xs).sum(dim=(1, 2)) / mass
        cy = (img * ys).sum(dim=(1, 2)) / mass
        dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
        shear = (img * dx * dy).sum(dim=(1, 2)) / (img * dy * dy).sum(dim=(1, 2)).clamp_min(1e-12)
        # output pixel (u, v) reads input (u + shear * (v - centre_y) + cx - centre_x, v + cy - centre_y)
        source_x = xs + shear[:, None, None] * (ys - centre_y) + (cx - centre_x)[:, None, None]
        source_y = ys + (cy - centre_y)[:, None, None]
        grid = torch.stack([source_x / (w - 1) * 2 - 1, source_y / (h - 1) * 2 - 1], dim=-1)
        out[start:start + chunk] = torch.nn.functional.grid_sample(x[start:start + chunk], grid, mode="bilinear",
                                                                    padding_mode="zeros", align_corners=True)
    return out


def knn_graph(points: torch.Tensor, k: int, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest neighbours of every row by cosine similarity, itself excluded: (indices,
    similarities), both (N, k)."""
    z = points / points.norm(dim=1, keepdim=True).clamp_min(1e-12)
    n = len(z)
    k = min(k, n - 1)
    indices = torch.empty(n, k, dtype=torch.long)
    similarities = torch.empty(n, k)
    for start in range(0, n, chunk):
        sims = z[start:start + chunk] @ z.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -math.inf                        # not its own neighbour
        values, found = sims.topk(k, dim=1)
        indices[start:start + chunk], similarities[start:start + chunk] = found, values
    return indices, similarities


@dataclass(frozen=True)
class NeighbourGraph:
    """The symmetrised kNN similarity graph W (sparse, N x N) and the D^-1/2 of its degrees."""

    weights: torch.Tensor
    scale: torch.Tensor


def neighbour_graph(images: torch.Tensor, k: int = 10, components: int = 50, sharpness: int = 3,
                    deskew_images: bool = False) -> NeighbourGraph:
    """The kNN graph of ``images`` (uint8 or float, (N, C, H, W)), deskewed first if
    ``deskew_images``: cosine similarities of their leading principal components, raised to
    ``sharpness`` and symmetrised (Iscen et al.'s settings)."""
    if len(images) > MAX_GRAPH_IMAGES:
        raise ValueError(f"label propagation builds a dense neighbour graph; {len(images)} training images "
                         f"are more than the {MAX_GRAPH_IMAGES} it handles")
    x = images_to_float(images) if images.dtype == torch.uint8 else images.float()
    if deskew_images:
        x = deskew(x)
    if max(x.shape[-2:]) > MAX_GRAPH_SIDE:
        x = torch.nn.functional.adaptive_avg_pool2d(x, [min(MAX_GRAPH_SIDE, side) for side in x.shape[-2:]])
    x = x.flatten(1)
    points = principal_components(x, components)
    neighbours, similarities = knn_graph(points, k)
    n = len(points)
    rows = torch.arange(n).repeat_interleave(neighbours.shape[1])
    weights = similarities.clamp_min(0).pow(sharpness).flatten()
    graph = torch.sparse_coo_tensor(torch.stack([rows, neighbours.flatten()]), weights, (n, n), check_invariants=True)
    graph = (graph + graph.t()).coalesce()
    scale = torch.sparse.sum(graph, dim=1).to_dense().clamp_min(1e-12).rsqrt()
    return NeighbourGraph(graph, scale)


def spread(graph: NeighbourGraph, labelled: torch.Tensor, labels: torch.Tensor, num_classes: int,
           alpha: float = 0.99, iterations: int = 40) -> GraphLabels:
    """Spreads ``labels`` (of the images at indices ``labelled``) over ``graph``:
    F <- alpha S F + Y with S = D^-1/2 W D^-1/2 (Zhou et al. 2004)."""
    n = len(graph.scale)
    scale = graph.scale
    seeds = torch.zeros(n, num_classes)
    seeds[labelled, labels] = 1.0
    scores = seeds.clone()
    for _ in range(iterations):
        scores = alpha * scale[:, None] * torch.sparse.mm(graph.weights, scale[:, None] * scores) + seeds
    probs = scores / scores.sum(dim=1, keepdim=True).clamp_min(1e-12)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=1)
    confidence = (1 - entropy / math.log(num_classes)).clamp(0, 1)
    confidence[scores.sum(dim=1) == 0] = 0                          # unreachable from any label
    return GraphLabels(labels=probs.argmax(dim=1), weights=confidence)


def held_out_accuracy(graph: NeighbourGraph, labelled: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      folds: int = 5, seed: int = 0) -> float:
    """How often propagation gives a labelled image its own label when that label is hidden: the
    labelled images in ``folds`` seeded folds, each spread from the others. A check of the graph
    that needs no label beyond the labelled split."""
    order = torch.randperm(len(labelled), generator=torch.Generator().manual_seed(seed + 7))
    right = 0
    for fold in order.chunk(min(folds, len(labelled))):
        keep = torch.ones(len(labelled), dtype=torch.bool)
        keep[fold] = False
        predicted = spread(graph, labelled[keep], labels[keep], num_classes).labels[labelled[fold]]
        right += int((predicted == labels[fold]).sum())
    return right / len(labelled)


def propagate_labels(images: torch.Tensor, labelled: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     k: int = 10, components: int = 50, alpha: float = 0.99, iterations: int = 40,
                     sharpness: int = 3, deskew_images: bool = False) -> GraphLabels:
    """Spreads ``labels`` (of the training images at indices ``labelled``) over the kNN graph of
    ``images`` (:func:`neighbour_graph`, :func:`spread`)."""
    graph = neighbour_graph(images, k, components, sharpness, deskew_images)
    return spread(graph, labelled, labels, num_classes, alpha, iterations)
