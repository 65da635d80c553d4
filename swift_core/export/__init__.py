"""`swift export`: merge adapters into full models (and, later, quantize)."""
