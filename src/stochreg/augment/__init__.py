"""How views are made: the random transformations by name (transforms.py), the strong
augmentation (randaugment.py), the geometry both share (geometry.py), and the PNG grid of
``stochreg show-views`` (show_views.py)."""
