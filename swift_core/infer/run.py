"""`swift infer`: an interactive chat in the terminal, or batch inference over a dataset.

Interactive mode reads stdin line by line (so it works under a pipe and in tmux): each line is a
user turn, the answer is streamed, the history is kept; `/clear` resets it, `/exit` (or end of
input) quits. Batch mode (`--val_dataset`) submits every row at once: the engine batches them;
a row may stop at the prompt, or end with an answer, which is then its reference and is removed
from the prompt. Results go
to a jsonl file, one line per row, with a tqdm bar and a throughput summary line; answered rows
are kept as they come, so the same command after an interruption answers only the rest
(swift_core.infer.partial_results).
`--port` serves the OpenAI-compatible API instead (as `swift deploy`; the command line sends it
there, `swift_core.cli.infer_cmd`: this pipeline does not reach up into the server). A reward model
(`swift rlhf --rlhf_type rm`) scores the rows' answers instead (swift_core.infer.score).
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import time
from pathlib import Path
from typing import Any

import click

from swift_core.atomic import write_jsonl_atomic
from swift_core.engines.protocol import GenerationResponse, InferenceEngine, UnsupportedRequest
from swift_core.errors import SwiftError
from swift_core.infer.arguments import InferArguments, build_engine, engine_config, split_adapters
from swift_core.infer.score import scores_only
from swift_core.multimodal.engine_inputs import row_images

COMMANDS = {
    "/clear": "reset the conversation",
    "/image PATH": "attach an image to the next turn",
    "/exit": "quit",
}


def run_infer(args: InferArguments, manager: Any = None) -> Any:
    from swift_core.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    config = engine_config(args, manager)
    if scores_only(config):
        return run_reward_scoring(args, config, manager)
    if args.port is not None:
        raise SwiftError(
            "--port: serving is swift deploy's (swift_core.serve.deploy.run_deploy), where the command line "
            "sends swift infer --port"
        )
    if args.val_dataset:
        from swift_core.datasets.loader import load_rows

        # the data first: a bad file fails before the model loads
        rows = load_rows(args.val_dataset, seed=args.seed or 42, manager=manager, answer_optional=True).rows
        engine = build_engine(args, manager)
        return run_batch(engine, args, rows)
    engine = build_engine(args, manager)
    return run_interactive(engine, args)


def run_reward_scoring(args: InferArguments, config: Any, manager: Any) -> Path:
    """A reward model scores the answers of --val_dataset (it generates nothing to chat with)."""
    from swift_core.datasets.loader import load_rows
    from swift_core.infer.score import run_scoring

    if args.port is not None or not args.val_dataset:
        raise SwiftError(
            f"{config.model} is a reward model: it scores answers instead of writing them. Give "
            "--val_dataset with rows that end with an answer (preference rows score both answers)"
        )
    rows = load_rows(args.val_dataset, seed=args.seed or 42, manager=manager).rows
    path = Path(args.result_path) if args.result_path else default_result_path(args)
    return run_scoring(config, rows, path, manager)


# -- interactive -------------------------------------------------------------------------------------


def run_interactive(engine: InferenceEngine, args: InferArguments, stdin: Any = None) -> None:
    stdin = stdin or sys.stdin
    system = [{"role": "system", "content": args.system}] if args.system else []
    history: list[dict[str, Any]] = list(system)
    images: list[Any] = []  # every image of the conversation, in order (vision-language models)
    pending: list[Any] = []  # attached with /image, sent with the next turn
    click.echo(
        f"chatting with {engine.model_name}: one line per turn; "
        + ", ".join(f"{c} to {h}" for c, h in COMMANDS.items()),
        err=True,
    )
    loop = asyncio.new_event_loop()
    try:
        while True:
            click.echo("<<< ", nl=False)
            sys.stdout.flush()
            line = stdin.readline()
            if not line:
                click.echo("")
                break
            text = line.rstrip("\r\n")
            command = text.strip()
            if command in ("/exit", "/quit"):
                break
            if command == "/clear":
                history = list(system)
                images, pending = [], []
                click.echo("(history cleared)")
                continue
            if command.startswith("/image"):
                pending += _attach(command[len("/image") :].strip())
                continue
            if not command:
                continue
            history.append({"role": "user", "content": "<image>" * len(pending) + text})
            click.echo(">>> ", nl=False)
            try:
                answer = loop.run_until_complete(_answer(engine, args, history, images + pending))
            except UnsupportedRequest as exc:
                history.pop()
                click.echo(f"\n(error: {exc}; the turn was dropped)")
                continue
            images, pending = images + pending, []
            history.append({"role": "assistant", "content": answer})
    finally:
        loop.run_until_complete(engine.close())
        loop.close()


def _attach(path: str) -> list[Any]:
    """The image `/image PATH` names, opened now so a typo is said at once (an empty list then)."""
    from swift_core.multimodal.media import ImageError, open_image

    if not path:
        click.echo("(usage: /image PATH)")
        return []
    try:
        image = open_image(path)
    except ImageError as exc:
        click.echo(f"(error: {exc})")
        return []
    click.echo(f"(image {path} attached to the next turn: {image.size[0]}x{image.size[1]})")
    return [image]


async def _answer(
    engine: InferenceEngine,
    args: InferArguments,
    history: list[dict[str, Any]],
    images: list[Any] | None = None,
) -> str:
    request = args.request(list(history))
    request.images = list(images or [])
    if not args.stream:
        response = await engine.generate(request)
        text = response.choices[0].text
        click.echo(text)
        return text
    parts = []
    async for chunk in engine.stream(request):
        if chunk.text:
            parts.append(chunk.text)
            click.echo(chunk.text, nl=False)
            sys.stdout.flush()
    click.echo("")
    return "".join(parts)


# -- batch -------------------------------------------------------------------------------------------


def default_result_path(args: InferArguments) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    checkpoint, _ = split_adapters(args.adapters)
    root = Path(checkpoint) if checkpoint else Path.cwd()
    return root / "infer_result" / f"{stamp}.jsonl"


def split_row(row: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(prompt messages, reference): the last assistant turn is the reference."""
    messages = list(row["messages"])
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], messages[-1].get("content")
    return messages, None


def run_batch(engine: InferenceEngine, args: InferArguments, rows: list[dict[str, Any]]) -> Path:
    from tqdm import tqdm

    from swift_core.infer.partial_results import PartialResults, fingerprint

    path = Path(args.result_path) if args.result_path else default_result_path(args)
    prompts = [split_row(row) for row in rows]
    kept = PartialResults(path, fingerprint(args, rows), len(rows))
    if kept.done:
        click.echo(f"resuming: {len(kept.done)} of {len(rows)} rows already answered ({kept.path})", err=True)
    elif kept.stale:
        click.echo(f"{kept.path} is from other rows or settings: starting over", err=True)
    results: list[dict[str, Any] | None] = [kept.done.get(i) for i in range(len(rows))]
    todo = [i for i in range(len(rows)) if results[i] is None]

    async def one(i: int) -> tuple[int, GenerationResponse | BaseException]:
        messages, _ = prompts[i]
        try:
            if not messages:
                raise UnsupportedRequest("the row has no prompt (only an assistant turn)")
            request = args.request(messages, rows[i].get("tools"))
            if rows[i].get("images"):  # the user's own rows: local files are theirs to read
                request.messages, request.images = row_images(rows[i], messages, UnsupportedRequest)
            return i, await engine.generate(request)
        except UnsupportedRequest as exc:
            return i, exc

    async def run_all() -> None:
        try:
            with (
                kept,
                tqdm(
                    total=len(rows),
                    initial=len(rows) - len(todo),
                    desc="infer",
                    unit="row",
                    file=sys.stderr,
                    dynamic_ncols=True,
                ) as bar,
            ):
                for done in asyncio.as_completed([one(i) for i in todo]):
                    i, outcome = await done
                    messages, reference = prompts[i]
                    record: dict[str, Any] = {"messages": messages}
                    if rows[i].get("images"):
                        record["images"] = rows[i]["images"]
                    if rows[i].get("tools"):
                        record["tools"] = rows[i]["tools"]
                    if isinstance(outcome, BaseException):
                        record.update(response=None, reference=reference, error=str(outcome))
                    else:
                        choice = outcome.choices[0]
                        record.update(
                            response=choice.text,
                            reference=reference,
                            finish_reason=choice.finish_reason,
                            prompt_tokens=outcome.prompt_tokens,
                            completion_tokens=outcome.completion_tokens,
                        )
                    results[i] = record
                    kept.add(i, record)
                    bar.update(1)
        finally:
            await engine.close()

    start = time.perf_counter()
    try:
        asyncio.run(run_all())
    except BaseException:
        if kept.done:
            click.echo(
                f"\ninterrupted: {len(kept.done)} of {len(rows)} rows kept in {kept.path}; the same command "
                f"with --result_path {path} answers only the rest",
                err=True,
            )
        raise
    elapsed = max(time.perf_counter() - start, 1e-9)
    write_jsonl_atomic(path, [r for r in results if r is not None])
    kept.discard()
    failed = sum(1 for r in results if r is not None and "error" in r)
    answered = [results[i] for i in todo if results[i] is not None]  # this run's rows
    tokens = sum(r.get("completion_tokens", 0) for r in answered if r is not None)
    resumed = f", {len(rows) - len(todo)} kept from the interrupted run" if len(todo) < len(rows) else ""
    click.echo(
        f"infer: {len(rows)} rows ({failed} failed{resumed}) in {elapsed:.2f}s: "
        f"{len(todo) / elapsed:.2f} rows/s, {tokens} output tokens, {tokens / elapsed:.1f} tokens/s; "
        f"results: {path}"
    )
    if failed == len(rows):
        raise SwiftError(f"every row failed, e.g.: {next(r['error'] for r in results if r)}")
    return path
