"""Model files: the bundled default, checks before loading, memory fit."""
