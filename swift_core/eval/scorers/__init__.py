"""The built-in scorers (registered by `swift_core.builtin.scorers`) and the `Scorer` interface."""
