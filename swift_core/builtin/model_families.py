"""Built-in model_families (being written)."""
