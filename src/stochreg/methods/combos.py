"""The paper's losses with the newer ideas: ``ts-me-strong`` computes TS across one weakly
transformed view and n-1 strongly augmented ones (RandAugment-style, as FixMatch), plus ME, so
stability is asked across much larger perturbations than the paper's affine warps."""
from __future__ import annotations

from . import Method, register
from .paper import paper_terms

register(Method("ts-me-strong", ("ts", "me"), paper_terms(("ts", "me")), min_views=2, strong_views=True,
                doc="TS across weak and strong views + ME"))
