"""Evaluation: the validator and its test pairs, the per-set report, error maps."""
