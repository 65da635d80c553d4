"""Built-in chat templates, one module per prompt-format family."""
