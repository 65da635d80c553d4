"""Inference: the engine protocol, request/response types, and generation helpers."""
