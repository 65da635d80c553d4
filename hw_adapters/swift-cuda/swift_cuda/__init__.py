"""swift-cuda: the CUDA hardware runtime plugin."""
