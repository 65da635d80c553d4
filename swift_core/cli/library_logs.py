"""What the libraries Swift drives print, sorted into what is the user's business and what is not.

Set up once by the CLI before anything heavy is imported (a `logging.Filter` on a library's
logger works whether the library is imported before or after). Each entry says why:

* bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community": an optional faster
  kernel bitsandbytes tries to fetch from the hub on CPUs with AVX512-BF16, on every peft import,
  QLoRA or not; it falls back to its own kernel. Dropped.
* DeepSpeed's "Setting accelerator to CPU": printed when transformers probes for DeepSpeed, which
  Swift does not use unless a strategy asks for it. Dropped.
* transformers' "The tokenizer has new PAD/BOS/EOS tokens ...": the Trainer copies the tokenizer's
  special-token ids into the model config, which is what Swift relies on (the template and the
  tokenizer decide them). Dropped.
* transformers' LOAD REPORT (with raw ANSI colour codes in log files): when the only news is a new
  one-output head (`score.*` MISSING, a reward model built from a causal LM), one plain line says
  so; any other report is kept, without the escape codes.
"""

from __future__ import annotations

import logging
import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REPORT_ROW = re.compile(r"^(\S+)\s*\|\s*(\w+)", re.MULTILINE)


class _Drop(logging.Filter):
    def __init__(self, *starts: str) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


class _LoadReport(logging.Filter):
    """transformers' state-dict LOAD REPORT: explained when it only announces a new head."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "LOAD REPORT" not in text:
            return True
        plain = _ANSI.sub("", text)
        first, _, table = plain.partition("\n")
        rows = [(key, status) for key, status in _REPORT_ROW.findall(table) if key != "Key"]
        source = first.partition(" from: ")[2] or "the checkpoint"
        if rows and all(status == "MISSING" and key.startswith("score.") for key, status in rows):
            keys = ", ".join(key for key, _ in rows)
            record.msg = (
                f"{source} has no reward head: {keys} starts from random values (the one-output score "
                "head of a reward model; swift rlhf --rlhf_type rm trains it)"
            )
        else:
            record.msg = plain
        record.args = None
        return True


_FILTERS: tuple[tuple[str, logging.Filter], ...] = (
    ("bitsandbytes.backends.cpu.ops", _Drop("Failed to load CPU gemm_4bit_forward")),
    ("DeepSpeed", _Drop("Setting accelerator to CPU")),
    ("transformers.trainer_utils", _Drop("The tokenizer has new PAD/BOS/EOS tokens")),
    ("transformers.modeling_utils", _LoadReport()),
)


def sort_library_logs(stream: object = None) -> None:
    """Install the filters above (idempotent). Where stderr is not a terminal (a log file, CI),
    the hub's and transformers' progress bars are off too: redrawn with carriage returns, a bar
    becomes one long line of every state it passed through."""
    import os
    import sys

    isatty = getattr(stream if stream is not None else sys.stderr, "isatty", None)
    if not (isatty is not None and isatty()):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name, log_filter in _FILTERS:
        logger = logging.getLogger(name)
        if log_filter not in logger.filters:
            logger.addFilter(log_filter)
