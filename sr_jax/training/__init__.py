"""Training: the config assembled from each part's section, the state, the optimiser, the pure train step,
the trainer's side of a workdir and the loop."""
