"""How this plugin lives with llm-compressor: a quiet import, its warnings routed to the user's log,
and the one CPU trap it needs worked around.

llm-compressor logs through loguru: importing it adds an INFO handler on stdout, and it reports
things that are not the user's business here ("No accelerator available! Compressing model on CPU
instead", per-module GPTQ metrics). Unless the user configured it themselves (any
`LLM_COMPRESSOR_LOG_*` variable), the import runs with its logging off, its console handler is
dropped afterwards, and during a quantization its warnings reach the user through `job.log`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

_USER_LOG_ENV = ("LLM_COMPRESSOR_LOG_DISABLED", "LLM_COMPRESSOR_LOG_LEVEL", "LLM_COMPRESSOR_LOG_FILE")
# Messages that say nothing the user can act on.
_NOISE = ("No accelerator available", "Disabling tokenizer parallelism")
_configured = False


class _DropFxTracingNotice(logging.Filter):
    """torch.fx warns once per process that `is_fx_tracing` also covers torch.export, when
    llm-compressor's sequential pipeline traces the model: a note to library authors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is_fx_tracing will return true" not in record.getMessage()


def user_configured_logging() -> bool:
    return any(name in os.environ for name in _USER_LOG_ENV)


def import_llmcompressor() -> Any:
    """`llmcompressor`, imported once without its start-up chatter."""
    global _configured
    import sys

    if "llmcompressor" not in sys.modules and not user_configured_logging():
        os.environ["LLM_COMPRESSOR_LOG_DISABLED"] = "true"
        try:
            import llmcompressor  # noqa: F401
        finally:
            del os.environ["LLM_COMPRESSOR_LOG_DISABLED"]
    import llmcompressor

    if not _configured and not user_configured_logging():
        # Enables llm-compressor's records again, with no console handler: `forward_warnings` adds
        # the only sink, for the length of one quantization.
        llmcompressor.configure_logger(llmcompressor.LoggerConfig(console_log_level=None))
        _configured = True
    return llmcompressor


@contextlib.contextmanager
def forward_warnings(log: Callable[[str], None]) -> Iterator[list[str]]:
    """llm-compressor's and compressed-tensors' warnings and errors as `log` lines while inside;
    yields the list of the lines forwarded."""
    seen: list[str] = []
    if user_configured_logging():
        yield seen
        return
    from loguru import logger

    def sink(message: Any) -> None:
        record = message.record
        text = str(record["message"]).strip()
        if any(noise in text for noise in _NOISE):
            return
        line = f"llm-compressor {record['level'].name.lower()}: {text}"
        seen.append(line)
        log(line)

    def ours(record: dict[str, Any]) -> bool:
        return str(record["name"]).startswith(("llmcompressor", "compressed_tensors"))

    handler = logger.add(sink, level="WARNING", filter=ours, format="{message}")
    fx_logger, fx_filter = logging.getLogger("torch.fx._symbolic_trace"), _DropFxTracingNotice()
    fx_logger.addFilter(fx_filter)
    try:
        with warnings.catch_warnings():
            # transformers warns that a model llm-compressor dispatched "has offloaded modules" when
            # it is saved; on one device it has none that matter.
            warnings.filterwarnings("ignore", message=".*save a model with offloaded modules.*")
            yield seen
    finally:
        logger.remove(handler)
        fx_logger.removeFilter(fx_filter)


@contextlib.contextmanager
def cpu_awq_pin_memory_workaround() -> Iterator[bool]:
    """Make `IntermediatesCache.pin_memory` a no-op while inside, on a machine without an accelerator;
    yields whether it was patched.

    The trap (shared/STACK.md, llm-compressor 0.14.0.1): `AWQModifier._apply_smoothing` pins the
    cached activations of each layer "for faster onloading" (`cache.pin_memory(batch_index)` in
    llmcompressor/modifiers/transform/awq/base.py), and `IntermediatesCache._pin_intermediate`
    (llmcompressor/pipelines/cache.py) calls `Tensor.pin_memory()`, which raises "Cannot access
    accelerator device when none is available" on a CPU-only machine. Pinned memory only speeds up
    host-to-device copies, so without an accelerator skipping it changes nothing else. The class
    attribute is patched only for the length of one AWQ run and restored after; with an
    accelerator nothing is patched.
    """
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.accelerator.is_available():
        yield False
        return
    original = IntermediatesCache.__dict__["pin_memory"]

    def pin_memory(self: Any, batch_index: int, input_names: list[str] | None = None) -> None:
        return None

    IntermediatesCache.pin_memory = pin_memory
    try:
        yield True
    finally:
        IntermediatesCache.pin_memory = original
