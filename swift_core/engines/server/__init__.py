"""The `server` engine: rollouts from a running `swift deploy --enable_weight_updates` (GRPO server mode)."""
