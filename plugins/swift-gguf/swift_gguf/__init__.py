"""swift-gguf: the GGUF export-time quantizer plugin (llama.cpp, Ollama)."""
