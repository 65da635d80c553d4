"""What a result depends on, recorded beside it: the template the engine renders with (resolved the
way every engine resolves it), its flags, system prompt, few-shot count, engine and generation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from swift_core.errors import SwiftError
from swift_core.eval.arguments import EvalArguments


def template_name(engine_args: Any, manager: Any) -> str | None:
    """The template the engine will render with, resolved the way every engine resolves it."""
    from swift_core.engines.adapter_folders import choose_template, read_adapters, split_checkpoint
    from swift_core.infer.arguments import engine_config

    try:
        config = engine_config(engine_args, manager)
        config, adapter = split_checkpoint(config, engine_args.engine)
        adapters = ([adapter] if adapter else []) + list(read_adapters(config.adapters, engine_args.engine))
        return choose_template(config, adapters, manager)[0]
    except SwiftError:
        return engine_args.template


def model_settings(args: EvalArguments, model: str | None, manager: Any) -> tuple[Any, dict[str, Any]]:
    engine_args = replace(args, model=model)
    engine = manager.get("engines", args.engine)
    settings = {
        "model": model,
        "adapters": list(args.adapters),
        "template": template_name(engine_args, manager),
        "template_options": args.chat_template_options(),
        "system": args.system,
        "few_shot": args.few_shot,
        "engine": engine.name,
        "engine_kwargs": args.engine_kwargs,
        "torch_dtype": args.torch_dtype,
        "generation": args.generation_settings(),
    }
    return engine_args, settings
