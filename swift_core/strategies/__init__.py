"""Distributed strategies: how one training run is spread over processes (DDP, FSDP, DeepSpeed, ...)."""
