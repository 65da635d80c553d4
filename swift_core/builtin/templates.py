"""Built-in templates (being written)."""
