"""A request's prompt as token ids, the same way for every engine.

Chat messages are rendered by Swift's chat template (`encode_prompt`, the code training used), so
a model is served exactly the way it was trained whatever engine serves it; a text prompt goes
through the tokenizer; token ids are checked against the vocabulary. Whatever makes the prompt
unusable is the caller's mistake: `UnsupportedRequest` (HTTP 400 in the server), and so is a prompt
longer than the model's context (`PromptTooLong`). Light: no torch.
"""

from __future__ import annotations

import contextlib
from typing import Any

from swift_core.engines.protocol import GenerationRequest, PromptTooLong, UnsupportedRequest
from swift_core.errors import SwiftError

# Unicode normalisation may merge a few characters into one before the tokenizer splits them:
# the cheap bound below allows for that much.
_NORMALISATION_SLACK = 4


def max_token_chars(tokenizer: Any) -> int:
    """The most characters one token of `tokenizer` stands for (its longest vocabulary entry:
    byte-level and SentencePiece entries are at least as long as the text they decode to).
    Computed once per tokenizer."""
    cached = getattr(tokenizer, "_swift_max_token_chars", None)
    if cached is None:
        cached = max((len(t) for t in tokenizer.get_vocab()), default=1) or 1
        with contextlib.suppress(AttributeError, TypeError):
            tokenizer._swift_max_token_chars = cached
    return int(cached)


def prompt_chars(request: GenerationRequest) -> int:
    """Characters of text the prompt holds at least (the template only adds to them)."""
    if request.messages is not None:
        return sum(len(m["content"]) for m in request.messages if isinstance(m.get("content"), str))
    return len(request.prompt) if isinstance(request.prompt, str) else 0


def refuse_far_too_long(request: GenerationRequest, tokenizer: Any, max_model_len: int) -> None:
    """`PromptTooLong` when the prompt cannot fit the context whatever its tokens, judged from its
    length alone: a megabyte of text is refused before the tokenizer spends seconds on it."""
    if not isinstance(request.prompt, (str, type(None))):  # token ids: their count is the length
        if len(request.prompt) > max_model_len:
            raise PromptTooLong(
                f"the prompt is {len(request.prompt)} tokens, but this model's maximum context length "
                f"is {max_model_len} tokens"
            )
        return
    chars = prompt_chars(request)
    per_token = max_token_chars(tokenizer) * _NORMALISATION_SLACK
    if chars > per_token * max_model_len:
        raise PromptTooLong(
            f"the prompt is at least {chars // per_token} tokens ({chars} characters), but this model's "
            f"maximum context length is {max_model_len} tokens"
        )


def request_prompt_ids(
    template: Any,
    tokenizer: Any,
    request: GenerationRequest,
    *,
    vocab_size: int | None = None,
    max_model_len: int | None = None,
) -> list[int]:
    """The prompt of `request` as token ids: `template` renders chat messages, `tokenizer` encodes a
    text prompt, token ids are taken as given once each is an int in [0, vocab_size) (default:
    `len(tokenizer)`; an engine whose embedding matrix is larger passes its size). With
    `max_model_len`, a prompt far too long for it is refused before it is tokenized.

    Tokenizing a long prompt takes a while: engines call this off their event loop."""
    if max_model_len:
        refuse_far_too_long(request, tokenizer, max_model_len)
    if request.messages is not None:
        from swift_core.datasets.encode import encode_prompt

        try:
            ids = encode_prompt(
                template,
                tokenizer,
                request.messages,
                tools=request.tools or None,
                **request.template_options,
            )
        except UnsupportedRequest:
            raise
        except SwiftError as exc:
            raise UnsupportedRequest(str(exc)) from None
        except (TypeError, KeyError, ValueError) as exc:  # e.g. an unknown template option
            raise UnsupportedRequest(
                f"cannot render the messages with template {template.name}: {exc}"
            ) from None
    elif isinstance(request.prompt, str):
        ids = list(tokenizer(request.prompt, add_special_tokens=True)["input_ids"])
    else:
        ids = list(request.prompt or [])
        size = len(tokenizer) if vocab_size is None else int(vocab_size)
        bad = [t for t in ids if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < size]
        if not ids or bad:
            got = f" (got {bad[0]!r})" if bad else ""
            raise UnsupportedRequest(f"prompt token ids must be a non-empty list of ids in [0, {size}){got}")
    if not ids:
        raise UnsupportedRequest("the prompt is empty")
    return ids


def new_tokens_allowed(prompt_tokens: int, max_tokens: int, max_model_len: int) -> int:
    """How many tokens may follow a prompt of `prompt_tokens`: `max_tokens`, cut at the context.
    `PromptTooLong` when the prompt (and one new token, unless none is asked for) does not fit."""
    room = 1 if max_tokens > 0 else 0
    if prompt_tokens + room > max_model_len:
        raise PromptTooLong(
            f"the prompt is {prompt_tokens} tokens, but this model's maximum context length is "
            f"{max_model_len} tokens" + (" (the prompt and at least one new token must fit)" if room else "")
        )
    return min(max_tokens, max_model_len - prompt_tokens)
