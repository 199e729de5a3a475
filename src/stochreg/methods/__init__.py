"""Training methods by name: each a pure loss function over the unlabelled views' logits.

Every method shares the one training step (train/step.py): labelled images once, every unlabelled
image ``n`` times (view-major), one forward pass; the method turns the unlabelled logits, shaped
(n, B, C), into named loss terms that are added, weighted and ramped up, to the cross-entropy.
Each loss a method returns is declared with its label and the config field of its weight
(:class:`TermName`: ``--lambda-ts`` for ``ts``, ``--lambda-me`` for ``me``, ``--lambda-u`` for
the others); terms/method.py weights them. Methods with ``strong_views`` get view 0 weakly transformed (the run's
``--transform``) and views 1..n-1 also strongly augmented (RandAugment-style), or only the last
ones (``weak_views``); methods with
``needs_teacher`` also receive the logits of the EMA weights (``--ema``) on the same views. A
method's ``target_views`` leading views only give targets (their logits are never differentiated), so
``--separate-targets`` may run them in a forward pass of their own, without gradient.

| name | terms | source |
|---|---|---|
| supervised | (none) | the baseline |
| ts, me, ts-me | ts, me | Sajjadi et al. 2016 (paper.py) |
| pi-model | pi | Laine & Aila 2017 (pi_model.py) |
| mean-teacher | mt | Tarvainen & Valpola 2017 (mean_teacher.py) |
| pseudo-label | pl | Lee 2013 (pseudo_label.py) |
| fixmatch | fixmatch | Sohn et al. 2020 (fixmatch.py) |
| entropy-min | ent | Grandvalet & Bengio 2005 (entropy_min.py) |
| ts-me-strong | ts, me | TS across weak and strong views, plus ME (combos.py) |
| ts-me-anchored | ts, me | TS of the strong views against the detached weak view, plus ME (combos.py) |
| ts-me-fixmatch | ts, me, fixmatch | the paper's TS + ME over n-1 weak views, FixMatch on one strong view (combos.py) |

    >>> METHODS.get("ts-me").terms
    ('ts', 'me')
"""
from __future__ import annotations

from .base import METHODS, Method, Outputs, TermName, register  # noqa: F401
# each module registers its methods when imported
from . import paper, pi_model, mean_teacher, pseudo_label, fixmatch, entropy_min, combos  # noqa: F401
