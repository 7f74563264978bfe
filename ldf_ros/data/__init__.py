"""Dataset loaders: paired visible/infrared folders and synthetic sequences."""
