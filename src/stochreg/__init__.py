"""stochreg: semi-supervised image classification with stochastic transformations and
perturbations (Sajjadi, Javanmardi and Tasdizen, NIPS 2016).

The public API: the two losses, the transformations, the networks, datasets, and training.
"""
from .losses import mutual_exclusivity, transformation_stability

__version__ = "0.1.0"
__all__ = ["mutual_exclusivity", "transformation_stability", "__version__"]
