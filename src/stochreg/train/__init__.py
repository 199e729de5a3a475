"""Training: one run from its settings to its result.

- ``loop.py``: :func:`train`, the loop around the step (run folder, resume, logging, evaluations,
  checkpoints, stop requests);
- ``state.py``: :class:`Learner`, the trainable state (model, EMA, optimiser, generators) and its
  state dict for exact resume;
- ``batches.py``: the seeded samplers and the device-resident (or streamed) images;
- ``view_plan.py``: which rows of a step are weak or strong views, and the augmentations;
- ``step.py``: the one training step of every method;
- ``schedule.py``, ``budget.py``, ``pace.py``, ``watch.py``, ``out_of_memory.py``, ``run_folder.py``,
  ``run_data.py``, ``finish.py``: the learning rate and optimiser, ``--time-budget``, the note on a
  long run, the loss watch, the error of a run out of memory, the run folder, the data splits and
  the end of a run.
"""
from .loop import Stopped, train
from .run_data import image_options, label_count
from .run_folder import config_differences, default_run_folder
from .state import Learner

__all__ = ["Learner", "Stopped", "config_differences", "default_run_folder", "image_options", "label_count", "train"]
