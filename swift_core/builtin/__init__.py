"""Built-in plugins: registered through the same hooks as external ones, so policy applies.

Each entry is plugin name -> module (or `module:object`), exactly like an entry point.
"""

BUILTIN_PLUGINS: dict[str, str] = {
    "runtime-cpu": "swift_core.builtin.runtime_cpu",
    "model-families": "swift_core.builtin.model_families",
    "templates": "swift_core.builtin.templates",
    "datasets": "swift_core.builtin.datasets",
    "tuners": "swift_core.builtin.tuners",
    "alignment-losses": "swift_core.builtin.alignment_losses",
    "engines": "swift_core.builtin.engines",
    "online-rl": "swift_core.builtin.online_rl",
    "scorers": "swift_core.builtin.scorers",
    "strategies": "swift_core.builtin.strategies",
}
