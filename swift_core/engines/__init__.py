"""The engine kit: what every inference engine builds on, below the `swift infer`/`deploy` pipelines.

`protocol` (the `InferenceEngine` interface, requests, responses, stream chunks), `prompt_ids` (a
request's prompt as token ids rendered by Swift's template), `adapter_folders` (LoRA folders and
Swift checkpoints read before a library starts), `loop_bridge` (a library's own event loop) and
`increments` (`IncrementalEngine`, for libraries that answer each choice as increments). Engine
plugins import these and nothing of the pipelines, so they sit below `swift_core.infer` and
`swift_core.serve` in the import graph; the built-in engine lives in `engines.transformers`.
"""
