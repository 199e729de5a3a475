"""The settings of a run: the typed :class:`TrainConfig` (settings.py, each field with its help),
the named presets (presets.py), loading and checking (load.py), and the settings chosen from the
data (recipe.py). A run is fully described by one TrainConfig; the resolved config is saved into
every run folder as ``config.yaml``. Presets are small dicts of overrides on top of the defaults:

    >>> cfg = resolve_config(preset="paper-mnist", overrides={"seed": 3})
    >>> cfg.net, cfg.views, cfg.seed
    ('fmp-mnist', 5, 3)
"""
from .load import default_labels, from_dict, load_yaml, resolve_config, validate
from .presets import PRESETS, sparseconvnet_settings
from .settings import AUTO, GROUPS, TrainConfig, field_type, help_of

__all__ = ["AUTO", "GROUPS", "PRESETS", "TrainConfig", "default_labels", "field_type", "from_dict", "help_of",
           "load_yaml", "resolve_config", "sparseconvnet_settings", "validate"]
