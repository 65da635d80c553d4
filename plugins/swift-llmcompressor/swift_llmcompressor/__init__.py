"""swift-llmcompressor: AWQ, GPTQ, W8A8 and FP8 export through llm-compressor (compressed-tensors)."""
