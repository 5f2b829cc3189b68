"""`make scale`: a scale model of AWS running the real write path (see SCALE.md and __main__.py)."""
