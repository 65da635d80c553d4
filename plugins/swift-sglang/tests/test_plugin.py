"""swift-sglang without an engine: registration (sglang never imported), the error when the
engine is selected where SGLang is not installed, the entry point, and the output/config helpers.

SGLang needs a GPU, so nothing here imports it; the engine is tested against a fake of its API in
test_sglang_engine.py and for real by bench/gpu/sglang_smoke.py.
"""

from __future__ import annotations

import pytest
from swift_sglang.config import sampling_params, server_args_kwargs
from swift_sglang.text import ChunkReader, finish_kind, token_logprobs

from swift_core.engines.protocol import EngineConfig, GenerationRequest
from swift_core.errors import SwiftError
from swift_core.testing import (
    assert_entry_point,
    assert_missing_library_says_what_to_install,
    assert_registers_without_importing,
)


def test_registers_the_engine_without_importing_sglang(plugin):
    assert_registers_without_importing(plugin)


def test_selecting_the_engine_without_sglang_says_what_to_install(plugin, manager):
    assert_missing_library_says_what_to_install(plugin, manager)


def test_the_distribution_declares_its_entry_point(plugin):
    assert_entry_point(plugin)


def test_chunk_reader_follows_whole_and_incremental_streams():
    """The same answer, streamed the two ways SGLang streams, reads as the same increments."""
    ids, texts = [11, 12, 13], ["Hel", "Hello wo", "Hello world"]

    def meta(i, finish=None):
        return {"completion_tokens": i + 1, "finish_reason": finish, "output_token_logprobs": []}

    whole = [{"text": texts[i], "output_ids": ids[: i + 1], "meta_info": meta(i)} for i in range(3)]
    whole[-1]["meta_info"]["finish_reason"] = {"type": "length"}
    parts = [texts[0], texts[1][3:], texts[2][8:]]
    delta = [{"text": parts[i], "output_ids": ids[i : i + 1], "meta_info": meta(i)} for i in range(3)]
    delta[-1]["meta_info"]["finish_reason"] = {"type": "length"}
    for outputs, incremental in ((whole, False), (delta, True)):
        reader = ChunkReader(incremental, stops=["xyz"])  # holds back 2 characters until the end
        read = [reader.read(o) for o in outputs]
        assert "".join(r.text for r in read) == "Hello world"
        assert [r.token_ids for r in read] == [[11], [12], [13]]
        assert read[0].text == "H" and finish_kind(read[-1].finish) == "length"
    # versions without output_ids: the ids come from the logprob tuples
    reader = ChunkReader(False)
    inc = reader.read(
        {"text": "a", "meta_info": {"completion_tokens": 1, "output_token_logprobs": [(-0.5, 42, None)]}}
    )
    assert inc.token_ids == [42] and finish_kind("stop") == "stop" and finish_kind(None) is None


def test_token_logprobs_from_sglang_tuples():
    out = token_logprobs(
        [(-0.5, 7, None), (None, 8, "x")], [[(-0.5, 7, None), (-1.5, 9, None)], None], 1, str
    )
    assert [(e.token, e.token_id, e.logprob, e.top) for e in out] == [
        ("7", 7, -0.5, [("7", -0.5)]),
        ("8", 8, None, []),
    ]


def test_config_mapping_without_sglang():
    names = [
        "model_path",
        "tokenizer_path",
        "max_running_requests",
        "context_length",
        "enable_lora",
        "lora_paths",
    ]
    config = EngineConfig(model="m", max_model_len=100, adapters={"a": "/x"}, torch_dtype="float16")
    kwargs = server_args_kwargs(config, "/m", {"a": "/x"}, names)
    assert kwargs == {
        "model_path": "/m",
        "tokenizer_path": "/m",
        "max_running_requests": 16,
        "context_length": 100,
        "enable_lora": True,
        "lora_paths": ["a=/x"],
    }  # dtype dropped: not a field of this (made-up) version
    with pytest.raises(SwiftError, match="'contxt_length' \\(did you mean 'context_length'"):
        server_args_kwargs(EngineConfig(model="m", extra={"contxt_length": 1}), "/m", {}, names)
    greedy = sampling_params(
        GenerationRequest(prompt=[1], temperature=0), max_new_tokens=4, stop_token_ids=[], seed=None
    )
    assert (
        greedy["temperature"] == 0
        and greedy["top_k"] == -1
        and "stop" not in greedy
        and "stop_token_ids" not in greedy
    )
