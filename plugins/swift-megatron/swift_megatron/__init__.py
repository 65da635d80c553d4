"""swift-megatron: Megatron-Core tensor/pipeline parallelism through NVIDIA's Megatron-Bridge."""
