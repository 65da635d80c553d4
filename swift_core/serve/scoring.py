"""POST /v1/score: a reward model's scores, in vLLM's score shape.

Why vLLM's `/v1/score` (not its `/classify`): a reward head gives one number per sequence, which is
what /v1/score returns (`data: [{"index", "object": "score", "score"}]`), while /classify returns a
probability per class; and /v1/score takes (text_1, text_2) pairs, which for a reward model are
(prompt, answer): clients written against vLLM's reward/rerank serving work unchanged. A pair is
scored as the conversation [user: text_1, assistant: text_2] through the model's own template, as
`swift infer` scores a row with those messages. Swift's extension `messages` takes whole
conversations (system prompt, several turns, tools), each ending with the answer to score.
"""

from __future__ import annotations

from typing import Any

from swift_core.serve import openai_api as api
from swift_core.serve.openai_api import ChatMessage, OpenAIError, _Strict


class ScoreRequest(_Strict):
    model: str
    text_1: str | list[str] | None = None
    text_2: str | list[str] | None = None
    messages: list[list[ChatMessage]] | None = None
    tools: list[api.Tool] | None = None


def _invalid(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def conversations(req: ScoreRequest) -> list[dict[str, Any]]:
    """The conversations to score, in the order of the answer's `data`."""
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []]
    extra = {"tools": tools} if tools else {}
    if req.messages is not None:
        if req.text_1 is not None or req.text_2 is not None:
            raise _invalid("messages", "give messages or text_1/text_2, not both.")
        out = []
        for i, conv in enumerate(req.messages):
            if not conv or conv[-1].role != "assistant":
                raise _invalid(
                    f"messages[{i}]", "each conversation must end with the assistant answer to score."
                )
            msgs = [{"role": m.role, "content": api._message_text(m, j)} for j, m in enumerate(conv)]
            out.append({"messages": msgs, **extra})
        if not out:
            raise _invalid("messages", "no conversation to score.")
        return out
    if req.text_1 is None or req.text_2 is None:
        raise _invalid("text_1", "give text_1 (prompts) and text_2 (answers), or messages.")
    prompts = [req.text_1] if isinstance(req.text_1, str) else list(req.text_1)
    answers = [req.text_2] if isinstance(req.text_2, str) else list(req.text_2)
    if len(prompts) == 1 and len(answers) > 1:
        prompts = prompts * len(answers)  # one prompt, several answers (vLLM's broadcast)
    if len(prompts) != len(answers) or not answers:
        raise _invalid(
            "text_2", f"{len(prompts)} prompts and {len(answers)} answers: give one prompt or as many."
        )
    return [
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}], **extra}
        for p, a in zip(prompts, answers)
    ]


def score_response(model: str, scores: list[tuple[float | None, str | None]]) -> dict[str, Any]:
    for i, (_, error) in enumerate(scores):
        if error is not None:
            raise OpenAIError(
                400, f"conversation {i}: {error}", param="messages", code="context_length_exceeded"
            )
    return {
        "id": api.new_id("score"),
        "object": "list",
        "created": api.now(),
        "model": model,
        "data": [{"index": i, "object": "score", "score": s} for i, (s, _) in enumerate(scores)],
    }
