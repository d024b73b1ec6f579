// Top layer.
