"""swift-bnb: the bitsandbytes load-time quantizer plugin (QLoRA)."""
