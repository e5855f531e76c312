"""Training and evaluation data: image sources, DIV2K, paired folders, the benchmark sets, degradations
and the tf.data pipeline."""
