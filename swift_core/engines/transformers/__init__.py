"""The built-in transformers + peft engine (`--engine transformers`), registered by
`swift_core.builtin.engines`.

Why here and not in `swift_core/builtin/`: `builtin/` holds registrations only (descriptors that
name their factories as strings), which the plugin manager imports at every start-up, so it must
stay light and low in the import graph; the code a factory names lives with its kind, as the
built-in tuners live in `swift_core/tuners/`. The engine builds on the same kit as the engine
plugins (`swift_core.engines`), and nothing in the kit or the pipelines imports it by name.

`engine` is the engine (dynamic batching, streaming, several adapters), `rows` the per-row
sampling, stopping and streaming inside one `model.generate` call.
"""
