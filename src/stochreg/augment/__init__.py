"""How views are made: the random transformations by name (transforms.py), the strong
augmentation (randaugment.py) and the geometry both share (geometry.py); ``stochreg show-views``
draws them (cli/show_views.py)."""
