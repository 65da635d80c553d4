"""The names a served model answers to: one rule for every engine.

Before this rule each engine named the model its own way (`--model qwen-7b` was `qwen-7b` under
the transformers engine and `Qwen/Qwen2.5-7B-Instruct` under vLLM), so a request that worked
with one engine was a 404 with another. Now, for every engine:

1. `--served_model_name NAME`: the model is NAME, and only NAME;
2. otherwise the model is what `--model` says: a local folder by its folder name (`/data/my-model/`
   is `my-model`), a hub id or an alias as typed (`qwen-7b`, `Qwen/Qwen2.5-7B-Instruct`);
3. and it also answers to the hub id that name resolved to (`qwen-7b` -> `Qwen/Qwen2.5-7B-Instruct`;
   a folder whose origin is known -> its hub id), listed in `/v1/models` after the first name.

Light: no torch.
"""

from __future__ import annotations

from pathlib import Path


def served_names(model: str, served_model_name: str | None, hub_id: str | None) -> list[str]:
    """[the model's name, *its aliases] for `--model model` (see the module's rule)."""
    if served_model_name:
        return [served_model_name]
    text = str(model).rstrip("/\\") or str(model)
    path = Path(text).expanduser()
    name = path.name if path.is_dir() and path.name else text
    names = [name]
    if hub_id and hub_id not in names:
        names.append(hub_id)
    return names
