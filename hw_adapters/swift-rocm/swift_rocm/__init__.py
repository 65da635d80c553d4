"""swift-rocm: the AMD ROCm hardware runtime plugin."""
