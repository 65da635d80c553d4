"""Arguments of `swift eval`: what to score (predictions files or models), on which tasks, how."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from swift_core.config.arguments import arg
from swift_core.engines.protocol import GenerationRequest
from swift_core.errors import SwiftError
from swift_core.infer.arguments import EngineArguments, GenerationArguments, ServeArguments


@dataclass(kw_only=True)
class EvalArguments(ServeArguments, GenerationArguments, EngineArguments):
    ARG_GROUP: ClassVar[str] = "evaluation"
    # Engines' options (generation) and scorers' options (--regex_pattern, ...) are flags too.
    CAPABILITY_KINDS: ClassVar[tuple[str, ...]] = ("engines", "scorers")

    model: list[str] = arg(
        [],
        help="Models to evaluate (folders, hub ids, checkpoints); several are compared side by side",
        aliases=("model_id_or_path",),
    )
    model_outputs: list[str] = arg(
        [], help="Predictions files to score without a model (swift eval's or swift infer's results jsonl)"
    )
    dataset: list[str] = arg(
        [],
        help="Tasks: task files or folders, BENCHMARK:PATH (a local copy), or BENCHMARK (hub): mmlu, ceval.SUBJECT, "
        "cmmlu.SUBJECT, arc, arc_easy, hellaswag, gsm8k",
        aliases=("eval_dataset",),
    )
    metric: str | None = arg(
        None, help="Scorer plugin (default: from the task: choice, math, exact_match, ...)"
    )
    limit: int | None = arg(None, help="Score only the first N rows of each dataset", aliases=("eval_limit",))
    few_shot: int = arg(
        0, help="Solved examples before each question (from the benchmark's dev split, else the first rows)"
    )
    template_options: str | None = arg(
        None,
        help='Chat-template flags as a JSON object, e.g. {"enable_thinking": false}; recorded in the report',
    )
    output_dir: str = arg("eval_output", help="Report, charts and cached predictions go here")
    use_cache: bool = arg(True, help="Reuse predictions cached by an identical earlier run")
    eval_backend: Literal["native", "lm-eval"] = arg(
        "native",
        help="native: Swift generates and scores; lm-eval: lm-evaluation-harness against swift deploy",
    )
    base_url: str | None = arg(
        None, help="lm-eval: an OpenAI-compatible server already running (default: start swift deploy)"
    )
    lm_eval_python: str | None = arg(
        None,
        help="lm-eval: the Python that has lm-eval installed (default: $SWIFT_LM_EVAL_PYTHON, else this one)",
    )
    lm_eval_model: Literal["auto", "local-completions", "local-chat-completions"] = arg(
        "auto",
        help="lm-eval: auto picks local-completions for loglikelihood tasks, local-chat-completions for generation",
    )
    lm_eval_include_path: str | None = arg(None, help="lm-eval: a folder of task YAML files (--include_path)")
    max_new_tokens: int | None = arg(256, help="Most new tokens per answer")

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise SwiftError(f"--limit must be >= 1 (got {self.limit})")
        if self.few_shot < 0:
            raise SwiftError(f"--few_shot must be >= 0 (got {self.few_shot})")

    def chat_template_options(self) -> dict[str, Any]:
        if not self.template_options:
            return {}
        try:
            value = json.loads(self.template_options)
        except ValueError as exc:
            raise SwiftError(f"--template_options: not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise SwiftError("--template_options: expected a JSON object")
        return value

    def request(self, messages: list[dict[str, Any]]) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_tokens=self.max_new_tokens if self.max_new_tokens is not None else 1 << 30,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            stop=list(self.stop),
            seed=self.seed,
            template_options=self.chat_template_options(),
        )

    def generation_settings(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "stop": list(self.stop),
            "seed": self.seed,
        }
