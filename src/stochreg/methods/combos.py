"""The paper's losses with the newer ideas: ``ts-me-strong`` computes TS across one weakly
transformed view and n-1 strongly augmented ones (RandAugment-style, as FixMatch), plus ME, so
stability is asked across much larger perturbations than the paper's affine warps.

Measured on MNIST with 100 labels (benchmarks/tuning.md, run I) it collapses: the symmetric TS
pulls the weak view toward whatever the strong views agree on (threes and twos toward eight),
26% test error at step 1,000 on seed 1. FixMatch avoids this with a detached, thresholded weak
view; this variant stays registered so the comparison table measures it."""
from __future__ import annotations

from . import Method, register
from .paper import paper_terms

register(Method("ts-me-strong", ("ts", "me"), paper_terms(("ts", "me")), min_views=2, strong_views=True,
                doc="TS across weak and strong views + ME"))
