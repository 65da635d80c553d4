"""Arguments of `swift infer` and `swift deploy`, and the engine they build.

The engine is whatever plugin `--engine` names (`manager.load("engines", name)`): the built-in
`transformers` (aliases `pt`, `hf`), or vllm, lmdeploy, ... from their plugins. Nothing here
branches on the engine's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from swift_core.config.arguments import arg
from swift_core.engines.protocol import EngineConfig, GenerationRequest, InferenceEngine
from swift_core.errors import SwiftError


@dataclass(kw_only=True)
class EngineArguments:
    """What to load and with which engine: shared by infer and deploy."""

    ARG_GROUP: ClassVar[str] = "model and engine"
    # The engines' own options are flags of infer and deploy (swift_core.config.options).
    CAPABILITY_KINDS: ClassVar[tuple[str, ...]] = ("engines",)

    model: str | None = arg(
        None,
        help="Local folder, hub id or alias of the model (default: the base model of --adapters)",
        aliases=("model_id_or_path",),
    )
    adapters: list[str] = arg(
        [],
        help="A training checkpoint (DIR: its args.json names the base model, family and template; a "
        "full-weights checkpoint is the model itself), and/or NAME=DIR LoRA adapters served as model NAME",
        aliases=("ckpt_dir", "lora_modules"),
    )
    model_type: str | None = arg(None, help="Model family, when it cannot be inferred from the model")
    template: str | None = arg(None, help="Chat template; default: the checkpoint's, else the family's")
    engine: str = arg(
        "transformers",
        help="Inference engine plugin: transformers (pt), vllm, ...",
        aliases=("infer_backend",),
    )
    engine_kwargs: str | None = arg(None, help="Engine-specific options as a JSON object")
    trust_remote_code: bool = arg(
        False,
        help="Run the Python code a model folder ships (auto_map): only for folders you trust; a policy "
        "file can forbid it",
    )
    device: str = arg(
        "auto", help="A runtime plugin: auto (the best available), cpu, cuda, rocm, npu, mps (see swift env)"
    )
    torch_dtype: str | None = arg(
        None, help="float32, bfloat16, float16; default: the runtime's", aliases=("dtype",)
    )
    max_model_len: int | None = arg(
        None, help="Longest prompt + answer in tokens (default: the model's context)"
    )
    max_batch_size: int = arg(16, help="Most sequences generated together in one batch")
    max_new_tokens: int | None = arg(
        None,
        help="Most new tokens per answer (deploy: when a request sets no max_tokens); default: up to the context",
    )
    seed: int | None = arg(None, help="Random seed for sampling")


@dataclass(kw_only=True)
class ServeArguments:
    ARG_GROUP: ClassVar[str] = "server"

    host: str = arg("127.0.0.1", help="Address to listen on (0.0.0.0 exposes the server to the network)")
    api_key: str | None = arg(
        None,
        help="Require 'Authorization: Bearer KEY' on every /v1 route and /openapi.json "
        "(default: $SWIFT_API_KEY; an empty key is refused)",
    )
    served_model_name: str | None = arg(
        None,
        help="The model name clients ask for (default: --model as given, a folder by its name; the "
        "hub id it resolves to is served too)",
    )
    max_request_bytes: int = arg(4 << 20, help="Largest request body accepted (413 beyond)")
    max_stop: int = arg(4, help="Most stop strings per request (OpenAI's limit: 4)")
    max_temperature: float = arg(2.0, help="Highest temperature a request may ask for (OpenAI's: 2)")
    enable_weight_updates: bool = arg(
        False,
        help="Add POST /v1/rollouts (token ids) and POST /v1/weights (new weights from a safetensors file on "
        "this machine's disk) for GRPO's server mode: lets any client with the key replace the served weights",
    )
    graceful_timeout: float = arg(30.0, help="On SIGTERM: seconds in-flight requests get to finish")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = arg("info", help="Server log level")


@dataclass(kw_only=True)
class GenerationArguments:
    ARG_GROUP: ClassVar[str] = "generation"

    temperature: float = arg(0.0, help="0: greedy")
    top_p: float = arg(1.0, help="Nucleus sampling threshold")
    top_k: int = arg(-1, help="Sample among the k most likely tokens (-1: off)")
    repetition_penalty: float = arg(1.0, help="> 1 discourages repeating tokens")
    stop: list[str] = arg(
        [], help="Stop strings (the template's end tokens always stop)", aliases=("stop_words",)
    )
    system: str | None = arg(None, help="System prompt (default: the template's)")
    stream: bool = arg(True, help="Interactive mode: print the answer as it is generated")


@dataclass(kw_only=True)
class InferArguments(ServeArguments, GenerationArguments, EngineArguments):
    ARG_GROUP: ClassVar[str] = "batch and serving"

    val_dataset: list[str] = arg(
        [], help="Batch mode: rows to answer (files, registered names, hub ids; NAME#N samples N rows)"
    )
    result_path: str | None = arg(
        None,
        help="Batch mode: the results jsonl (default: infer_result/<time>.jsonl next to the checkpoint, or here)",
    )
    port: int | None = arg(None, help="Serve an OpenAI-compatible API on this port instead (as swift deploy)")

    def request(self, messages: list[dict[str, Any]], tools: list[Any] | None = None) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_tokens=self.max_new_tokens if self.max_new_tokens is not None else 1 << 30,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            stop=list(self.stop),
            seed=self.seed,
            tools=tools,
        )


@dataclass(kw_only=True)
class DeployArguments(ServeArguments, EngineArguments):
    ARG_GROUP: ClassVar[str] = "server"

    port: int = arg(8000, help="Port to listen on (0: any free port, shown in the ready line)")


def split_adapters(adapters: list[str]) -> tuple[str | None, dict[str, str]]:
    """(the training checkpoint given as DIR, {NAME: DIR} adapters)."""
    plain = []
    named: dict[str, str] = {}
    for item in adapters:
        name, eq, path = item.partition("=")
        if eq and name and "/" not in name and "\\" not in name:
            if not path:
                raise SwiftError(f"--adapters {item}: give NAME=DIR")
            if name in named:
                raise SwiftError(f"--adapters: the name {name!r} is given twice")
            named[name] = path
        else:
            plain.append(item)
    if len(plain) > 1:
        raise SwiftError(
            f"--adapters: {len(plain)} checkpoints without a name ({', '.join(plain)}); serve several adapters "
            "as NAME=DIR"
        )
    return (plain[0] if plain else None), named


def engine_config(args: EngineArguments, manager: Any = None) -> EngineConfig:
    from swift_core.models.checkpoint import require_complete
    from swift_core.plugins import get_plugin_manager

    checkpoint, named = split_adapters(args.adapters)
    extra: dict[str, Any] = {}
    if args.engine_kwargs:
        try:
            extra = json.loads(args.engine_kwargs)
        except ValueError as exc:
            raise SwiftError(f"--engine_kwargs: not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise SwiftError("--engine_kwargs: expected a JSON object")
    if checkpoint is not None:
        model = str(require_complete(checkpoint))
        if args.model:
            extra["base_model"] = args.model
    elif args.model:
        model = args.model
    else:
        raise SwiftError("pass --model MODEL, or --adapters CHECKPOINT (a folder written by swift sft)")
    descriptor = (manager or get_plugin_manager()).get("engines", args.engine)
    return EngineConfig(
        model=model,
        template=args.template,
        model_type=args.model_type,
        adapters=named,
        served_model_name=args.served_model_name,
        torch_dtype=args.torch_dtype,
        device=args.device,
        max_model_len=args.max_model_len,
        max_batch_size=args.max_batch_size,
        seed=args.seed,
        extra=extra,
        options=descriptor.options_from(args),
        trust_remote_code=args.trust_remote_code,
    )


def build_engine(args: EngineArguments, manager: Any = None) -> InferenceEngine:
    """The engine plugin `--engine` names, built from the arguments."""
    from swift_core.plugins import get_plugin_manager
    from swift_core.runtimes.selection import refuse_unsupported
    from swift_core.runtimes.support import Workload

    manager = manager or get_plugin_manager()
    # An engine the runtime declares it cannot run (vLLM on MPS) is refused before it loads.
    refuse_unsupported(args.device, Workload(engine=manager.get("engines", args.engine).name), manager)
    factory = manager.load("engines", args.engine)
    engine = factory(engine_config(args, manager))
    if not isinstance(engine, InferenceEngine):
        descriptor = manager.get("engines", args.engine)
        raise SwiftError(
            f"engine {descriptor.name!r} from plugin {descriptor.plugin!r} did not build an InferenceEngine "
            f"(got {type(engine).__name__})"
        )
    return engine
