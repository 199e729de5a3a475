"""stochreg: semi-supervised image classification with stochastic transformations and
perturbations (Sajjadi, Javanmardi and Tasdizen, NIPS 2016).

The public API: ``fit`` to train (on a folder of images or on arrays), ``load`` for a trained
run, ``export`` to write it as a file other programs run (ONNX, a torch.export program or
TorchScript), ``suggest`` for the unlabelled images to label next, and the two losses for your own
training loop::

    >>> import stochreg
    >>> run = stochreg.fit("photos", transform="crop-flip")   # doctest: +SKIP
    >>> run = stochreg.load("runs/photos")                    # doctest: +SKIP
    >>> run.predict(["a.jpg", "b.jpg"]).argmax(1)             # doctest: +SKIP
    >>> stochreg.export("runs/photos", "pt2")                 # doctest: +SKIP
"""
__version__ = "0.1.0"

from .api import fit  # noqa: E402
from .losses import mutual_exclusivity, transformation_stability  # noqa: E402
from .runs.export import export_model as export  # noqa: E402
from .runs.suggest import suggest  # noqa: E402
from .runs.trained import load  # noqa: E402

__all__ = ["fit", "load", "export", "suggest", "mutual_exclusivity", "transformation_stability", "__version__"]
