"""What each method may write, and the checks that need no model and no torch.

`Plan` is everything decided before a model loads: the compressed-tensors preset, the bits, the
group size and the modules kept in full precision. `check(args)` builds one (so a bad flag is
refused in a fraction of a second) and `export` builds the same one again from the job.

The presets are compressed-tensors' names (`compressed_tensors.quantization.PRESET_SCHEMES`);
`PRESETS` repeats the few facts about them that the checks need, so the checks stay free of torch
(tests/test_llmcompressor.py compares this table with the library's).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class Preset:
    weight_bits: int
    weight_type: str  # "int" or "float"
    strategy: str  # of the weights: "group", "channel", "block"
    activation_bits: int | None  # None: weight-only (activations stay in 16/32 bits)
    symmetric: bool
    activation_strategy: str | None = None  # dynamic scales per "token" or per "group"


PRESETS: dict[str, Preset] = {
    "W4A16": Preset(4, "int", "group", None, True),
    "W4A16_ASYM": Preset(4, "int", "group", None, False),
    "W8A16": Preset(8, "int", "group", None, True),
    "W8A8": Preset(8, "int", "channel", 8, True, "token"),
    "FP8_DYNAMIC": Preset(8, "float", "channel", 8, True, "token"),
    "FP8_BLOCK": Preset(8, "float", "block", 8, True, "group"),
}


@dataclass(frozen=True)
class Method:
    """A quantizer's rules: bits -> the presets it may write (the first is the default)."""

    name: str
    algorithm: str  # what computes the weights, for the log and the manifest
    presets: dict[int, tuple[str, ...]]
    default_bits: int

    @property
    def bits(self) -> tuple[int, ...]:
        return tuple(self.presets)


METHODS: dict[str, Method] = {
    # AWQ is asymmetric by convention (a zero point per group); W4A16 is the symmetric variant.
    "awq": Method("awq", "AWQ", {4: ("W4A16_ASYM", "W4A16")}, 4),
    "gptq": Method("gptq", "GPTQ", {4: ("W4A16", "W4A16_ASYM"), 8: ("W8A16",)}, 4),
    # llm-compressor's recipe for int8 weights and activations: SmoothQuant, then GPTQ.
    "w8a8": Method("w8a8", "SmoothQuant+GPTQ", {8: ("W8A8",)}, 8),
    # Dynamic per-token activation scales: nothing to calibrate; weights by round-to-nearest.
    "fp8": Method("fp8", "round-to-nearest (data-free)", {8: ("FP8_DYNAMIC", "FP8_BLOCK")}, 8),
}


@dataclass(frozen=True)
class Plan:
    method: str
    scheme: str
    bits: int
    group_size: int | None  # None: the preset has no groups (per channel, per block)
    ignore: tuple[str, ...]

    @property
    def preset(self) -> Preset:
        return PRESETS[self.scheme]


def plan(method: Method, bits: int | None, options: Any) -> Plan:
    """The plan for `method` at `bits` (None: the method's default) with its options, or a SwiftError."""
    flag = f"--quant_method {method.name}"
    if bits is None:
        bits = method.default_bits
    if isinstance(bits, bool) or bits not in method.presets:
        allowed = " or ".join(map(str, method.bits))
        raise SwiftError(f"{flag} writes {allowed}-bit weights: pass --quant_bits {allowed}, got {bits!r}")
    choices = method.presets[bits]
    scheme = options.quant_scheme or choices[0]
    scheme = str(scheme).strip().upper()
    if scheme not in choices:
        raise SwiftError(
            f"{flag} --quant_bits {bits}: --quant_scheme {options.quant_scheme!r} is not one it writes; "
            f"use one of {', '.join(choices)}"
        )
    group_size = None
    if PRESETS[scheme].strategy == "group":
        group_size = getattr(options, "quant_group_size", None)
        if (
            isinstance(group_size, bool)
            or not isinstance(group_size, int)
            or (group_size < 1 and group_size != -1)
        ):
            raise SwiftError(
                f"--quant_group_size must be a positive number of weights per group, or -1 for one scale "
                f"per output channel; got {group_size!r}"
            )
        if group_size == -1:
            group_size = None
    return Plan(method.name, scheme, bits, group_size, _ignore(options.quant_ignore))


def _ignore(patterns: Any) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    kept = []
    for pattern in patterns:
        text = str(pattern).strip()
        if not text:
            continue
        if text.startswith("re:"):
            try:
                re.compile(text[3:])
            except re.error as exc:
                raise SwiftError(f"--quant_ignore {text!r}: not a regular expression ({exc})") from None
        kept.append(text)
    return tuple(kept)


# Projections of the common decoder layouts and which config size is their input (columns).
_PROJECTIONS = {
    "q_proj": "hidden_size",
    "k_proj": "hidden_size",
    "v_proj": "hidden_size",
    "gate_proj": "hidden_size",
    "up_proj": "hidden_size",
    "o_proj": "attention_size",
    "down_proj": "intermediate_size",
}


_LABELS = {
    "hidden_size": "hidden_size",
    "attention_size": "num_attention_heads x head_dim",
    "intermediate_size": "intermediate_size",
}


def _ignored(projection: str, ignore: tuple[str, ...]) -> bool:
    """Whether an ignore pattern may name this projection (then the library's own check decides)."""
    return any(projection in pattern for pattern in ignore)


def check_group_size(plan: Plan, model_dir: Any) -> None:
    """Refuse a group size that does not divide the input size of a projection, read from the model
    folder's config.json (skipped when the model is not a local folder: llm-compressor checks again
    once the model is loaded, naming every layer)."""
    if plan.group_size is None or not model_dir:
        return
    config_path = Path(str(model_dir)).expanduser() / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return
    config = config.get("text_config") or config
    sizes: dict[str, int] = {}
    for key in ("hidden_size", "intermediate_size"):
        if isinstance(config.get(key), int):
            sizes[key] = config[key]
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (
        sizes["hidden_size"] // heads if "hidden_size" in sizes and isinstance(heads, int) and heads else None
    )
    if isinstance(heads, int) and isinstance(head_dim, int):
        sizes["attention_size"] = heads * head_dim
    bad: dict[str, list[str]] = {}
    for projection, key in _PROJECTIONS.items():
        if key in sizes and sizes[key] % plan.group_size and not _ignored(projection, plan.ignore):
            bad.setdefault(key, []).append(projection)
    if bad:
        found = " and ".join(f"{'/'.join(names)} ({_LABELS[key]} {sizes[key]})" for key, names in bad.items())
        divisors = [g for g in (256, 128, 64, 32, 16) if all(s % g == 0 for s in sizes.values())]
        hint = f"; {', '.join(map(str, divisors))} would fit" if divisors else ""
        raise SwiftError(
            f"--quant_group_size {plan.group_size} does not divide the input size of {found} in {config_path}: "
            f"every quantized layer's input size must be a multiple of the group size{hint} "
            "(or -1 for per-channel scales, or keep those layers in full precision with --quant_ignore)"
        )
