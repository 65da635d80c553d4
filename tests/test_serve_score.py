"""A reward model behind `swift deploy` (issue 16): POST /v1/score (vLLM's score shape) gives the
scores `swift infer` writes for the same conversations; a generating model refuses the route and
a reward model refuses generation, each with a 400 that says which to use."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from swift_core.engines.protocol import EngineConfig

KEY = "sk-score"
AUTH = {"Authorization": f"Bearer {KEY}"}
PAIRS = [
    {
        "messages": [
            {"role": "user", "content": f"question {i}?"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }
    for i in range(4)
]


class Settings:
    api_key = KEY
    served_model_name = "rm"
    max_new_tokens = 8


@pytest.fixture(scope="module")
def rm_checkpoint(tiny_qwen, tmp_path_factory):
    """A full reward checkpoint of `swift rlhf --rlhf_type rm` (one step on four pairs)."""
    from swift_core.testing.install import run_swift

    root = tmp_path_factory.mktemp("rm")
    data = root / "pairs.jsonl"
    rows = [{**p, "rejected_response": "no"} for p in PAIRS]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_swift(
        "rlhf", "--rlhf_type", "rm", "--model", str(tiny_qwen), "--dataset", str(data), "--tuner_type", "full",
        "--max_steps", "1", "--save_steps", "1", "--per_device_train_batch_size", "4",
        "--output_dir", str(root / "out"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return next((root / "out").glob("v*/checkpoint-1")), data


@pytest.fixture(scope="module")
def server(rm_checkpoint):
    from serve_helpers import running

    from swift_core.serve.app import create_app
    from swift_core.serve.reward import RewardEngine

    engine = RewardEngine(EngineConfig(model=str(rm_checkpoint[0])))
    with running(create_app(engine, Settings())) as url:
        yield url
    asyncio.run(engine.close())


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=AUTH, timeout=60)


def test_the_score_route_gives_swift_infers_scores(server, rm_checkpoint, tmp_path):
    from swift_core.testing.install import run_swift

    ckpt, data = rm_checkpoint
    out = tmp_path / "scores.jsonl"
    r = run_swift("infer", "--model", str(ckpt), "--val_dataset", str(data), "--result_path", str(out))
    assert r.returncode == 0, r.stderr
    expected = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    rejected = [json.loads(line)["rejected_score"] for line in out.read_text().splitlines()]

    pairs = post(
        server,
        "/v1/score",
        {
            "model": "rm",
            "text_1": [p["messages"][0]["content"] for p in PAIRS],
            "text_2": [p["messages"][1]["content"] for p in PAIRS],
        },
    )
    assert pairs.status_code == 200, pairs.text
    body = pairs.json()
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1, 2, 3]
    assert all(d["object"] == "score" for d in body["data"])
    got = [d["score"] for d in body["data"]]
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-5, (got, expected)
    assert len(set(round(g, 6) for g in got)) > 1  # different answers, different scores

    convs = post(
        server,
        "/v1/score",
        {
            "model": "rm",
            "messages": [
                PAIRS[0]["messages"],
                [PAIRS[1]["messages"][0], {"role": "assistant", "content": "no"}],
            ],
        },
    )
    assert convs.status_code == 200, convs.text
    got = [d["score"] for d in convs.json()["data"]]
    assert abs(got[0] - expected[0]) < 1e-5 and abs(got[1] - rejected[1]) < 1e-5

    one_prompt = post(
        server, "/v1/score", {"model": "rm", "text_1": "question 2?", "text_2": ["answer 2", "no"]}
    )
    got = [d["score"] for d in one_prompt.json()["data"]]
    assert abs(got[0] - expected[2]) < 1e-5 and abs(got[1] - rejected[2]) < 1e-5


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "rm", "text_1": ["a", "b"], "text_2": ["x", "y", "z"]}, "text_2"),
        ({"model": "rm", "text_1": "a"}, "text_1"),
        ({"model": "rm", "messages": [[{"role": "user", "content": "no answer"}]]}, "messages[0]"),
        ({"model": "nope", "text_1": "a", "text_2": "b"}, "model"),
    ],
)
def test_bad_score_requests(server, body, param):
    r = post(server, "/v1/score", body)
    assert r.status_code in (400, 404) and r.json()["error"]["param"] == param, r.text


def test_a_reward_model_refuses_to_generate(server):
    r = post(server, "/v1/chat/completions", {"model": "rm", "messages": PAIRS[0]["messages"][:1]})
    assert r.status_code == 400 and "/v1/score" in r.json()["error"]["message"]
