"""`swift plan`: per-device memory of a training run for each strategy, before anything is bought or run."""
