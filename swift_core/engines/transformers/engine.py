"""The built-in inference engine: transformers + peft, dynamic batching, streaming, several LoRAs.

How a request travels:

1. `generate`/`stream` (on the asyncio loop) checks the request, renders chat messages with the
   Swift template (`encode_prompt`, the one training used), refuses prompts longer than the context
   and queues a job.
2. A batcher task (one per event loop) waits a short window (`batch_window_s`, 5 ms) so that
   requests arriving together meet, then takes the oldest job and every queued job with the same
   adapter and seed, up to `max_batch_size` rows (a request with n choices is n rows). Sampling
   settings, stop strings and max_tokens may differ within a batch: they are applied per row
   (`swift_core.engines.transformers.rows`).
3. The batch runs as ONE left-padded `model.generate` call in a single worker thread, so the loop
   keeps accepting requests; those queue up and form the next batch when the worker is free.
   After a batch of T seconds the batcher waits up to `rejoin_fraction * T` (at most
   `max_rejoin_wait_s`) for the clients it just answered to come back, so that a steady set of
   clients keeps forming full batches instead of splitting into a large and a small one. This is
   request-level batching: a request that arrives during a batch waits for it to end (vLLM-style
   continuous batching belongs to the engines that have it).
4. Streams receive the increments of each generation step from the worker thread in one
   `loop.call_soon_threadsafe` call; a reader that falls behind gets the waiting increments of
   its choice merged into one chunk.
5. A cancelled request (client gone) sets a flag that the stopping criterion reads every step: its
   rows stop, and a batch whose rows have all stopped ends its `generate` call early.

The seed of a request is applied per batch (`torch.manual_seed` before `generate`): requests with
different seeds never share a batch, so a seeded request sees the same random stream whatever the
others ask for; sampled rows of one batch share that stream.

Logprobs are those of the model's raw distribution (before repetition penalty, temperature, top-k
and top-p), as vLLM returns by default. Adapters: served name -> peft adapter, chosen per batch
with `set_adapter` (or `disable_adapter()` for the base model); requests for different adapters
never share a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swift_core.engines.prompt_ids import new_tokens_allowed, request_prompt_ids
from swift_core.engines.protocol import (
    Choice,
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    StreamChunk,
    TokenLogprob,
    UnsupportedRequest,
)
from swift_core.engines.served_names import served_names
from swift_core.engines.transformers.jobs import DONE, EngineStats, Job, Outbox, merge_chunks
from swift_core.engines.transformers.rows import CANCELLED, Row, RowFailed, RowSampler, RowTracker
from swift_core.errors import SwiftError

logger = logging.getLogger(__name__)

_DEFAULT_ADAPTER = "swift_default"
# Prompt logprobs: at most this many logits values (batch x length x vocab) in one forward.
_PROMPT_LOGITS_BUDGET = 64 * 1024 * 1024


class TransformersEngine(InferenceEngine):
    """`EngineConfig` -> a loaded model (plus LoRA adapters) answering requests in batches."""

    batch_window_s: float = 0.005  # requests arriving within this window share a batch
    rejoin_fraction: float = 0.05  # after a batch of T seconds, wait up to this * T for more requests
    max_rejoin_wait_s: float = 0.2

    def __init__(self, config: EngineConfig, manager: Any = None):
        import torch
        import transformers

        from swift_core.engines.adapter_folders import adapter_folder
        from swift_core.models.heads import CAUSAL_LM
        from swift_core.models.loader import load_for_inference, prepare_for_inference
        from swift_core.plugins import get_plugin_manager

        manager = manager or get_plugin_manager()
        self.config = config
        self.capabilities = EngineCapabilities(
            lora=True,
            logprobs=True,
            prompt_logprobs=True,
            streaming=True,
            multiple_choices=True,
            seed=True,
            repetition_penalty=True,
            top_k=True,
            max_top_logprobs=20,
        )
        self.max_batch_size = max(1, int(config.max_batch_size))
        self.stats = EngineStats()

        # Every adapter folder is checked before anything heavy loads.
        named = [
            (name, f"adapter_{i}", str(adapter_folder(name, path, "transformers")[0]))
            for i, (name, path) in enumerate(config.adapters.items())
        ]
        prepared = prepare_for_inference(
            str(config.model),
            base_model=config.extra.get("base_model"),
            model_type=config.model_type,
            template=config.template,
            head=CAUSAL_LM,
            trust_remote_code=config.trust_remote_code,
            manager=manager,
        )
        if config.seed is not None:
            torch.manual_seed(config.seed)  # requests without a seed: reproducible per process
        loaded = load_for_inference(
            prepared,
            device=config.device,
            torch_dtype=config.torch_dtype,
            load_kwargs=dict(config.extra.get("model_kwargs", {})),
            with_adapter=False,  # served by name below, the checkpoint's own as the default
            manager=manager,
        )
        self.family, self.tokenizer, self.template = loaded.family, loaded.tokenizer, loaded.template
        # Images of requests, for a vision-language model (None for text-only families).
        from swift_core.multimodal.engine_inputs import engine_vision

        self.vision = engine_vision(prepared, config.options)
        self.capabilities.images = self.vision is not None
        self.device = loaded.device
        model = loaded.model
        adapters = (
            [(_DEFAULT_ADAPTER, _DEFAULT_ADAPTER, prepared.adapter)] if prepared.adapter else []
        ) + named
        self.base_model = model
        self._original_generation_config = model.generation_config
        # Sampling defaults of the model's generation_config.json must not slip in: every request
        # states its own settings, and the only logits processor is RowSampler.
        model.generation_config = transformers.GenerationConfig(
            eos_token_id=getattr(model.generation_config, "eos_token_id", None),
            bos_token_id=getattr(model.generation_config, "bos_token_id", None),
            pad_token_id=getattr(model.generation_config, "pad_token_id", None),
        )

        # Adapters: served name -> internal peft name; the checkpoint's own adapter is the default.
        self._adapters: dict[str, str] = {}
        self._default_adapter: str | None = None
        self.model = model
        if adapters:
            from peft import PeftModel

            for n, (served, internal, folder) in enumerate(adapters):
                if n == 0:
                    self.model = PeftModel.from_pretrained(model, folder, adapter_name=internal)
                else:
                    self.model.load_adapter(folder, adapter_name=internal)
                if internal == _DEFAULT_ADAPTER:
                    self._default_adapter = internal
                else:
                    self._adapters[served] = internal
            self.model.eval()

        # One naming rule for every engine; a checkpoint's base model is not its name.
        hub_id = prepared.resolved.hub_id if prepared.checkpoint is None else None
        self.model_name, *aliases = served_names(str(config.model), config.served_model_name, hub_id)
        self.model_aliases = tuple(aliases)
        limit = config.max_model_len or getattr(model.config, "max_position_embeddings", None)
        if not limit:
            tok_limit = getattr(self.tokenizer, "model_max_length", None)
            limit = tok_limit if tok_limit and tok_limit < 10_000_000 else 2048
        self.max_model_len = int(limit)
        self.vocab_size = int(model.get_input_embeddings().num_embeddings)

        stop_ids: list[int] = []
        vocab = self.tokenizer.get_vocab()
        stop_ids += [vocab[t] for t in self.template.stop if t in vocab]
        eos = getattr(self._original_generation_config, "eos_token_id", None)
        stop_ids += eos if isinstance(eos, list) else ([eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            stop_ids.append(self.tokenizer.eos_token_id)
        self.stop_ids = list(dict.fromkeys(stop_ids))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else 0)
        # Structured outputs (response_format, guided_*): xgrammar masks each constrained row.
        from swift_core.engines.transformers.grammar import GrammarBook, grammar_available

        self.grammars = GrammarBook(self.tokenizer, self.vocab_size, self.stop_ids)
        if grammar_available():
            self.capabilities.constraints = GrammarBook.kinds

        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-engine")
        # Prompts are rendered and tokenized here, off the event loop (a long prompt takes
        # seconds) and apart from the generating worker; one thread, as the tokenizer is shared.
        self._tokenize_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-tokenize")
        self._pending: list[Job] = []
        self._runners: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}  # one batcher per event loop
        self._ids = itertools.count()
        self._token_texts: dict[int, str] = {}
        self._closed = False

    # -- the protocol ------------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def metrics(self) -> dict[str, Any]:
        return {
            "queue_depth": sum(j.rows for j in self._pending if not j.cancelled),
            "batches": self.stats.generate_calls,
            "batch_sizes": dict(self.stats.batch_sizes),
        }

    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)  # the values every engine refuses
        from swift_core.multimodal.engine_inputs import check_images

        check_images(self.vision, request, UnsupportedRequest)
        if request.n > self.max_batch_size:
            raise UnsupportedRequest(f"n is at most {self.max_batch_size} (the engine's max_batch_size)")

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        job = await self._submit(request, None)
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    async def stream(self, request: GenerationRequest):  # type: ignore[override]
        queue: asyncio.Queue[Any] = asyncio.Queue()
        job = await self._submit(request, queue)
        held: Any = None
        try:
            while True:
                item = held if held is not None else await queue.get()
                held = None
                if item is DONE:
                    job.future.result()  # raises the worker's error, if any
                    return
                while not queue.empty():  # the reader fell behind: send what waits as one chunk
                    nxt = queue.get_nowait()
                    if nxt is not DONE and nxt.index == item.index and item.finish_reason is None:
                        item = merge_chunks(item, nxt)
                    else:
                        held = nxt
                        break
                yield item
        finally:
            if not job.future.done():
                self._cancel(job)

    def update_weights(self, weights: Iterable[tuple[str, Any]]) -> int:
        """Load new weights into the served base model in place (no rebuild): (name, tensor) pairs
        in Hugging Face names, as `swift_core.rl.rollout.merged_weights` gives them (a GRPO policy,
        its LoRA merged in). Strict: an unknown name or another shape refuses the whole update
        (`WeightsRefused`) and leaves the model as it was; names not given keep their values.
        Runs on the generating worker thread, so it lands between batches, never inside one.
        Served adapters stay and apply over the new base weights. Returns the tensors copied."""
        from swift_core.engines.weights import base_parameter_names, copy_weights

        if self._closed:
            raise SwiftError("the engine is closed")
        given = list(weights)
        return self._executor.submit(
            lambda: copy_weights(base_parameter_names(self.base_model), given)
        ).result()

    async def close(self) -> None:
        self._closed = True
        for job in self._pending:
            job.resolve(None, SwiftError("the engine is shutting down"))
        self._pending.clear()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self._tokenize_executor.shutdown(wait=False, cancel_futures=True)

    # -- queueing ----------------------------------------------------------------------------------

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids, each image's placeholder widened to its visual tokens."""
        from swift_core.multimodal.engine_inputs import widen_prompt

        return widen_prompt(self.vision, request, self._text_prompt_ids(request), UnsupportedRequest)

    def _text_prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids: chat messages rendered by the template, or the raw prompt (ids
        checked against the model's embedding size, which may exceed the tokenizer's)."""
        return request_prompt_ids(
            self.template,
            self.tokenizer,
            request,
            vocab_size=self.vocab_size,
            max_model_len=self.max_model_len,
        )

    async def _submit(self, request: GenerationRequest, queue: asyncio.Queue | None) -> Job:
        if self._closed:
            raise SwiftError("the engine is shutting down")
        self.check_request(request)
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(self._tokenize_executor, self.prompt_ids, request)
        grammar = None
        if request.constraint is not None:  # compiled before it queues: a bad schema is a 400
            grammar = await loop.run_in_executor(
                self._tokenize_executor, self.grammars.compile, request.constraint
            )
        if self._closed:
            raise SwiftError("the engine is shutting down")
        max_tokens = new_tokens_allowed(len(ids), request.max_tokens, self.max_model_len)
        job = Job(
            next(self._ids),
            request,
            ids,
            max_tokens,
            loop,
            loop.create_future(),
            queue,
            grammar=grammar,
        )
        self.stats.requests += 1
        self._pending.append(job)
        runner = self._runners.get(loop)
        if runner is None or runner.done():
            self._runners = {lp: r for lp, r in self._runners.items() if not r.done() and not lp.is_closed()}
            self._runners[loop] = loop.create_task(self._run_pending(loop))
        return job

    def _cancel(self, job: Job) -> None:
        if not job.cancelled:
            job.cancelled = True
            self.stats.cancelled += 1

    async def _run_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        window, target = self.batch_window_s, self.max_batch_size
        while True:
            await self._collect(loop, window, target)
            # Jobs of another loop belong to that loop's runner; a closed loop's jobs have no reader.
            self._pending = [j for j in self._pending if not j.cancelled and not j.loop.is_closed()]
            if not any(j.loop is loop for j in self._pending):
                return
            batch = self._take_batch(loop)
            left = sum(j.rows for j in self._pending if j.loop is loop)
            started = time.perf_counter()
            await self._answer(loop, batch)
            # The clients just answered often send their next request at once: after a batch of T
            # seconds, wait up to rejoin_fraction * T for them (less once they are all back),
            # rather than run a few early ones alone and make the rest wait for that batch.
            took = time.perf_counter() - started
            window = max(self.batch_window_s, min(self.max_rejoin_wait_s, self.rejoin_fraction * took))
            target = min(self.max_batch_size, left + sum(j.rows for j in batch))

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        """Run `batch` and resolve its jobs. A row that fails (RowFailed) fails its request only;
        should the whole call fail, each request that has not streamed anything yet is run again
        on its own, so that one request's failure reaches no other. The error is logged once,
        by whoever answers the request (the server), not here."""
        try:
            results = await loop.run_in_executor(self._executor, self._run_batch, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing batch fails its requests, never the batcher
            logger.debug("a batch of %d requests failed: %r", len(batch), exc)
            if len(batch) == 1:
                batch[0].resolve(None, exc)
                return
            for job in batch:
                if job.emitted or job.cancelled:
                    job.resolve(None, exc)
                else:
                    await self._answer(loop, [job])
            return
        for job, result in zip(batch, results):
            if isinstance(result, BaseException):
                job.resolve(None, result)
            else:
                job.resolve(result)

    async def _collect(self, loop: asyncio.AbstractEventLoop, window: float, target_rows: int) -> None:
        """Wait `window` seconds for requests to arrive, or less once `target_rows` rows are queued."""
        deadline = loop.time() + window
        while True:
            remaining = deadline - loop.time()
            queued = sum(j.rows for j in self._pending if j.loop is loop and not j.cancelled)
            if remaining <= 0 or queued >= target_rows:
                return
            await asyncio.sleep(min(self.batch_window_s, remaining))

    def _take_batch(self, loop: asyncio.AbstractEventLoop) -> list[Job]:
        """The oldest job of this loop and every queued one that may share its batch."""
        key = next(j.key for j in self._pending if j.loop is loop)
        batch: list[Job] = []
        rest: list[Job] = []
        rows = 0
        for job in self._pending:
            if job.loop is loop and job.key == key and (not batch or rows + job.rows <= self.max_batch_size):
                batch.append(job)
                rows += job.rows
            else:
                rest.append(job)
        self._pending = rest
        return batch

    # -- the worker thread -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _adapter(self, adapter: str | None):
        if adapter is not None:
            self.model.set_adapter(self._adapters[adapter])
            yield
        elif self._default_adapter is not None:
            self.model.set_adapter(self._default_adapter)
            yield
        elif self.model is not self.base_model:
            with self.model.disable_adapter():
                yield
        else:
            yield

    def _run_batch(self, jobs: list[Job]) -> list[GenerationResponse | BaseException | None]:
        import torch

        self.stats.batches += 1
        jobs_live = [j for j in jobs if not j.cancelled]
        prompt_lps: dict[int, list[TokenLogprob]] = {}
        rows_of: dict[int, list[Row]] = {}
        with torch.inference_mode(), self._adapter(jobs[0].request.adapter):
            echo = [j for j in jobs_live if j.request.echo and (j.request.logprobs or j.request.top_logprobs)]
            if echo:
                prompt_lps = self._prompt_logprobs(echo)
            gen = [j for j in jobs_live if j.max_tokens > 0]
            if gen:
                rows_of = self._generate(gen)
        out: list[GenerationResponse | BaseException | None] = []
        for job in jobs:
            if job.cancelled:
                out.append(None)
                continue
            req = job.request
            rows = rows_of.get(job.id)
            failed = [r.error for r in rows or [] if r.error]
            if failed:
                out.append(RowFailed(failed[0]))
                continue
            if rows is None:  # max_tokens 0: nothing generated (echo / prompt logprobs only)
                choices = [Choice(c, "", "length", [], [] if req.logprobs else None) for c in range(req.n)]
                outbox = Outbox()
                for c in choices:
                    outbox.put(job, StreamChunk(c.index, "", "length", c.logprobs, len(job.prompt_ids), 0))
                outbox.flush()
                completion = 0
            else:
                choices = [
                    Choice(
                        r.index,
                        r.text,
                        r.finish_reason or "length",
                        r.ids,
                        r.logprobs if r.want_logprobs else None,
                    )
                    for r in rows
                ]
                completion = sum(r.generated for r in rows)
            prompt_text = None
            if req.echo:
                prompt_text = req.prompt if isinstance(req.prompt, str) else self.decode(job.prompt_ids)
            out.append(
                GenerationResponse(
                    choices, len(job.prompt_ids), completion, prompt_lps.get(job.id), prompt_text
                )
            )
        return out

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_text(self, token_id: int) -> str:
        """One token as text (logprobs' `token`), cached."""
        text = self._token_texts.get(token_id)
        if text is None:
            if len(self._token_texts) > 200_000:
                self._token_texts.clear()
            text = self._token_texts[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return text

    def _generate(self, jobs: list[Job]) -> dict[int, list[Row]]:
        import torch
        import transformers

        rows: list[Row] = []
        prompts: list[list[int]] = []
        rows_of: dict[int, list[Row]] = {}
        matchers: dict[int, Any] = {}  # row position -> its grammar matcher (constrained rows)
        outbox = Outbox()
        for job in jobs:
            req = job.request
            mine = []
            for c in range(req.n):
                row = Row(
                    index=c,
                    max_tokens=job.max_tokens,
                    stops=[s for s in req.stop if s],
                    temperature=req.temperature,
                    top_p=req.top_p,
                    top_k=req.top_k,
                    repetition_penalty=req.repetition_penalty,
                    top_logprobs=req.top_logprobs,
                    want_logprobs=bool(req.logprobs or req.top_logprobs),
                    emit=functools.partial(outbox.put, job) if job.queue is not None else None,
                    is_cancelled=functools.partial(getattr, job, "cancelled"),
                    prompt_tokens=len(job.prompt_ids),
                )
                mine.append(row)
                if job.grammar is not None:
                    matchers[len(rows)] = self.grammars.matcher(job.grammar)
                rows.append(row)
                prompts.append(job.prompt_ids)
            rows_of[job.id] = mine
        longest = max(len(p) for p in prompts)
        pad_lengths = [longest - len(p) for p in prompts]
        input_ids = torch.tensor(
            [[self.pad_id] * k + p for k, p in zip(pad_lengths, prompts)], device=self.device
        )
        mask = torch.tensor(
            [[0] * k + [1] * len(p) for k, p in zip(pad_lengths, prompts)], device=self.device
        )
        sampling = any(not r.greedy for r in rows)
        masks = None
        if matchers:
            from swift_core.engines.transformers.grammar import RowMasks

            masks = RowMasks(matchers, len(rows), self.vocab_size, self.grammars.hidden_ids)
        tracker = RowTracker(rows, self.decode, self.token_text, set(self.stop_ids), outbox.flush, masks)
        sampler = RowSampler(rows, pad_lengths, tracker, sampling)
        seed = jobs[0].request.seed
        if seed is not None:
            torch.manual_seed(seed)
        # Neutral settings, so that generate adds no processor of its own: RowSampler does it all.
        neutral: dict[str, Any] = {"temperature": 1.0, "top_k": 0, "top_p": 1.0} if sampling else {}
        config = transformers.GenerationConfig(
            max_new_tokens=max(r.max_tokens for r in rows),
            do_sample=sampling,
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=self.stop_ids or None,
            pad_token_id=self.pad_id,
            **neutral,
        )
        self.stats.generate_calls += 1
        self.stats.generated_rows += len(rows)
        self.stats.max_batch_rows = max(self.stats.max_batch_rows, len(rows))
        self.stats.batch_sizes[len(rows)] = self.stats.batch_sizes.get(len(rows), 0) + 1
        self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            **self._vision_inputs(jobs, input_ids),
            generation_config=config,
            logits_processor=transformers.LogitsProcessorList([sampler]),
            stopping_criteria=transformers.StoppingCriteriaList([tracker]),
        )
        tracker.finish_unfinished()
        self.stats.cancelled_rows += sum(1 for r in rows if r.finish_reason == CANCELLED)
        return rows_of

    def _vision_inputs(self, jobs: list[Job], input_ids: Any) -> dict[str, Any]:
        from swift_core.multimodal.engine_inputs import generate_inputs

        return generate_inputs(self.vision, jobs, input_ids)

    def _prompt_logprobs(self, jobs: list[Job]) -> dict[int, list[TokenLogprob]]:
        """Logprob of every prompt token given the ones before it: one forward per group of prompts."""
        import torch

        out: dict[int, list[TokenLogprob]] = {}
        group: list[Job] = []

        def flush() -> None:
            if not group:
                return
            longest = max(len(j.prompt_ids) for j in group)
            pads = [longest - len(j.prompt_ids) for j in group]
            ids = torch.tensor(
                [[self.pad_id] * k + j.prompt_ids for k, j in zip(pads, group)], device=self.device
            )
            mask = torch.tensor(
                [[0] * k + [1] * len(j.prompt_ids) for k, j in zip(pads, group)], device=self.device
            )
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            self.stats.prompt_forwards += 1
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            for b, job in enumerate(group):
                pad, prompt = pads[b], job.prompt_ids
                top_n = job.request.top_logprobs
                lp = torch.log_softmax(logits[b, pad : pad + len(prompt) - 1].float(), dim=-1)
                targets = torch.tensor(prompt[1:], device=lp.device)
                picked = lp.gather(1, targets[:, None])[:, 0].tolist()
                top_v, top_i = lp.topk(top_n, dim=-1) if top_n else (None, None)
                entries = [TokenLogprob(self.token_text(prompt[0]), prompt[0], None, [])]
                for t in range(1, len(prompt)):
                    top = []
                    if top_n:
                        top = [
                            (self.token_text(i), float(v))
                            for i, v in zip(top_i[t - 1].tolist(), top_v[t - 1].tolist())
                        ]
                    entries.append(TokenLogprob(self.token_text(prompt[t]), prompt[t], picked[t - 1], top))
                out[job.id] = entries
            group.clear()

        for job in sorted(jobs, key=lambda j: len(j.prompt_ids)):
            longest = max([len(j.prompt_ids) for j in group] + [len(job.prompt_ids)])
            if group and (len(group) + 1) * longest * self.vocab_size > _PROMPT_LOGITS_BUDGET:
                flush()
            group.append(job)
        flush()
        return out
