"""Training pipelines: `swift sft`, `swift pt` (and the preference trainers built on them)."""
