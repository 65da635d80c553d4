"""A request's prompt as token ids, the same way for every engine.

Chat messages are rendered by Swift's chat template (`encode_prompt`, the code training used), so
a model is served exactly the way it was trained whatever engine serves it; a text prompt goes
through the tokenizer; token ids are checked against the vocabulary. Whatever makes the prompt
unusable is the caller's mistake: `UnsupportedRequest` (HTTP 400 in the server), and so is a prompt
longer than the model's context (`PromptTooLong`). Light: no torch.
"""

from __future__ import annotations

from typing import Any

from swift_core.engines.protocol import GenerationRequest, PromptTooLong, UnsupportedRequest
from swift_core.errors import SwiftError


def request_prompt_ids(
    template: Any, tokenizer: Any, request: GenerationRequest, *, vocab_size: int | None = None
) -> list[int]:
    """The prompt of `request` as token ids: `template` renders chat messages, `tokenizer` encodes a
    text prompt, token ids are taken as given once each is an int in [0, vocab_size) (default:
    `len(tokenizer)`; an engine whose embedding matrix is larger passes its size)."""
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
