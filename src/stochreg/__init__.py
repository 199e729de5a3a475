"""stochreg: semi-supervised image classification with stochastic transformations and
perturbations (Sajjadi, Javanmardi and Tasdizen, NIPS 2016).

The public API: the two losses, and ``load`` for a trained model::

    >>> import stochreg
    >>> run = stochreg.load("runs/mnist@100.s0-ts-me")   # doctest: +SKIP
    >>> run.predict(uint8_images).argmax(1)              # doctest: +SKIP
"""
from .losses import mutual_exclusivity, transformation_stability
from .run import load

__version__ = "0.1.0"
__all__ = ["load", "mutual_exclusivity", "transformation_stability", "__version__"]
