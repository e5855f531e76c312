"""A run's folder: its config, its checkpoints (written by the trainer's manager, read by every reader)
and the params-only workdirs that imports and blends write."""
