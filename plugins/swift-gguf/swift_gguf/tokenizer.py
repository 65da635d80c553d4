"""The tokenizer of a Hugging Face folder as llama.cpp reads it from GGUF metadata.

llama.cpp's "gpt2" tokenizer model is byte-level BPE: the vocabulary in its byte-level spelling
(`Ġthe`), one token type per id, the merges, the special token ids, whether BOS/EOS are added, and
a pre-tokenizer *name* (`tokenizer.ggml.pre`) that selects the splitting regex compiled into
llama.cpp. The name is recognised here from tokenizer.json's own pre-tokenizer: llama.cpp's
converter fingerprints the tokenizer's output instead, with a table of known models; matching the
regex itself also works for a tokenizer trained from scratch with one of those regexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

# Hugging Face's ByteLevel pre-tokenizer with use_regex=True splits with GPT-2's regex.
GPT2 = "gpt-2"
# Split regexes of tokenizer.json (before a ByteLevel without regex) -> llama.cpp pre-tokenizer names.
SPLIT_REGEXES: dict[str, str] = {
    # Llama 3.x: contractions case-insensitive, digits in groups of up to three.
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
    # Qwen2 / Qwen2.5 / Qwen3: the same, one digit at a time.
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
}
KNOWN_PRE = (GPT2, *SPLIT_REGEXES.values())

# gguf.TokenType values (llama.cpp's llama_token_type), kept here to stay light.
NORMAL, UNUSED, CONTROL, USER_DEFINED = 1, 5, 3, 4


@dataclass
class Vocabulary:
    tokens: list[str]
    token_types: list[int]
    pre: str
    add_bos: bool
    add_eos: bool
    special_ids: dict[str, int] = field(default_factory=dict)  # filled by gguf.SpecialVocab


def _load_tokenizer_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise SwiftError(
            f"{model_dir}: no tokenizer.json; --quant_method gguf writes byte-level BPE tokenizers "
            f"(Qwen2, Llama 3) from a fast tokenizer's tokenizer.json"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SwiftError(f"{path}: cannot read the tokenizer: {exc}") from None


def _is_byte_level_bpe(tok: dict[str, Any]) -> bool:
    model = tok.get("model") or {}
    decoder = tok.get("decoder") or {}
    decoders = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return (
        model.get("type") == "BPE"
        and not model.get("byte_fallback", False)
        and any(d.get("type") == "ByteLevel" for d in decoders)
    )


def detect_pre(tok: dict[str, Any]) -> str | None:
    """llama.cpp's name for the tokenizer's pre-tokenizer, or None when it is not one it knows."""
    pre = tok.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel":
        return GPT2 if pre.get("use_regex", True) and not pre.get("add_prefix_space", False) else None
    if pre.get("type") != "Sequence":
        return None
    steps = pre.get("pretokenizers") or []
    if len(steps) != 2:
        return None
    split, byte_level = steps
    if (
        split.get("type") != "Split"
        or split.get("behavior") != "Isolated"
        or split.get("invert", False)
        or byte_level.get("type") != "ByteLevel"
        or byte_level.get("use_regex", True)
        or byte_level.get("add_prefix_space", False)
    ):
        return None
    pattern = (split.get("pattern") or {}).get("Regex")
    return SPLIT_REGEXES.get(pattern) if isinstance(pattern, str) else None


def read_vocabulary(model_dir: Path, n_vocab: int, pre_option: str = "auto") -> Vocabulary:
    """Tokens (padded to `n_vocab`, the embedding's rows), token types, pre-tokenizer, BOS/EOS use."""
    tok = _load_tokenizer_json(model_dir)
    if not _is_byte_level_bpe(tok):
        model = (tok.get("model") or {}).get("type")
        raise SwiftError(
            f"{model_dir / 'tokenizer.json'}: a {model} tokenizer"
            f"{' with byte fallback (SentencePiece style)' if (tok.get('model') or {}).get('byte_fallback') else ''}; "
            f"--quant_method gguf writes byte-level BPE tokenizers only (Qwen2, Llama 3, GPT-2 style)"
        )
    pre = pre_option.strip() if pre_option and pre_option.strip().lower() != "auto" else detect_pre(tok)
    if pre is None:
        raise SwiftError(
            f"{model_dir / 'tokenizer.json'}: its pre-tokenizer is not one llama.cpp is known to match "
            f"({', '.join(KNOWN_PRE)}); name llama.cpp's pre-tokenizer with --gguf_tokenizer_pre NAME "
            f"(the tokenizer.ggml.pre that llama.cpp's convert_hf_to_gguf.py writes for this tokenizer)"
        )

    vocab: dict[str, int] = (tok.get("model") or {}).get("vocab") or {}
    by_id: dict[int, str] = {i: t for t, i in vocab.items()}
    added: dict[int, dict[str, Any]] = {}
    for entry in tok.get("added_tokens") or []:
        added[int(entry["id"])] = entry
        by_id[int(entry["id"])] = entry["content"]
    top = max(by_id) if by_id else -1
    if top >= n_vocab:
        raise SwiftError(
            f"{model_dir}: the tokenizer has token id {top} but the model's embedding has {n_vocab} rows"
        )

    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")  # embedding rows no token uses (vocabularies padded to 64/128)
            types.append(UNUSED)
        elif i in added:
            tokens.append(added[i]["content"])
            types.append(CONTROL if added[i].get("special", False) else USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(NORMAL)
    add_bos, add_eos = _adds_bos_eos(model_dir)
    return Vocabulary(tokens=tokens, token_types=types, pre=pre, add_bos=add_bos, add_eos=add_eos)


def _adds_bos_eos(model_dir: Path) -> tuple[bool, bool]:
    """Whether the Hugging Face tokenizer puts BOS first / EOS last on a plain encode.

    Asked of the tokenizer transformers loads (post-processor, add_bos_token and all), so llama.cpp
    adds exactly what the model saw in training.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer("Hello")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return (bool(ids) and bos is not None and ids[0] == bos, bool(ids) and eos is not None and ids[-1] == eos)
