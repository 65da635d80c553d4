"""swift-vllm: vLLM as a Swift inference engine (`--infer_backend vllm`)."""
