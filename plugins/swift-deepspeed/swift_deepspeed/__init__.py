"""swift-deepspeed: DeepSpeed ZeRO as a Swift strategy plugin."""
