"""The web UI's job service and API, without a browser (tests/test_webui_browser.py drives the page).

The server runs as a real `swift web-ui` process and its jobs as real `swift` subprocesses: what
is tested is that jobs outlive the server, stop and resume, and that the forms are the CLI's.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from helpers import install_fixture, run_swift
from webui_helpers import WebUI, task_file

from swift_core.config.arguments import format_help, parse_arguments
from swift_core.webui import forms
from swift_core.webui.app import create_app

TRAIN = {"max_steps": 24, "logging_steps": 1, "save_steps": 4, "per_device_train_batch_size": 4}


def _help_names(cls) -> set[str]:
    return set(re.findall(r"^  --(\w+) ", format_help(cls, prog="swift x"), flags=re.M))


def test_every_form_has_exactly_the_fields_of_the_cli_command():
    commands = forms.available_commands()
    assert {"sft", "pt", "rlhf", "export", "quantize", "eval", "deploy"} <= set(commands)
    for command in commands:
        schema = forms.form_schema(command)
        names = [f["name"] for f in schema["fields"]]
        assert len(names) == len(set(names))
        assert set(names) == _help_names(forms.full_class(command)), command
    lora_rank = next(f for f in forms.form_schema("sft")["fields"] if f["name"] == "lora_rank")
    assert (
        lora_rank["capability_option"] and "lora" in lora_rank["capabilities"] and lora_rank["type"] == "int"
    )


def test_preview_yaml_and_cli_parse_to_the_same_arguments(tmp_path):
    values = {
        "model": "m",
        "dataset": ["a.jsonl", "b.jsonl"],
        "learning_rate": 3e-4,
        "lora_rank": 4,
        "gradient_checkpointing": True,
        "max_steps": 7,
        "output_dir": "out",
    }
    argv = forms.to_argv("sft", values)
    preview = forms.preview("sft", argv)
    config = tmp_path / "c.yaml"
    config.write_text(preview["yaml"])
    cls = forms.full_class("sft")
    from_yaml, from_cli = parse_arguments(cls, [str(config)]), parse_arguments(cls, argv)
    assert from_yaml == from_cli
    assert from_cli.dataset == ["a.jsonl", "b.jsonl"] and from_cli.lora_rank == 4 and from_cli.max_steps == 7
    assert preview["cli"].startswith("swift sft --model m --dataset a.jsonl b.jsonl")
    assert "max_steps: 7\n" in preview["yaml"]  # typed, not '7'
    assert forms.to_argv("sft", {"lora_rank": 8}) == []  # a default is not repeated


def test_a_bad_form_is_refused_with_the_cli_message_before_any_job(tmp_path):
    client = TestClient(create_app(tmp_path))
    bad = [
        ({"tuner_type": "nope"}, "unknown tuner 'nope'"),
        ({"max_steps": "x"}, "expected an integer"),
        ({"no_such_field": 1}, "unknown field 'no_such_field'"),
    ]
    for values, message in bad:
        r = client.post("/api/jobs", json={"command": "sft", "values": {"model": "m", **values}})
        assert r.status_code == 400 and message in r.json()["error"], r.text
    assert client.post("/api/jobs", json={"command": "rm -rf", "values": {}}).status_code == 400
    assert client.get("/api/jobs").json()["jobs"] == []
    assert client.get("/api/jobs/../../etc").status_code == 404


def test_a_plugins_options_are_in_its_form_and_gone_when_policy_blocks_it(tmp_path):
    site = install_fixture(tmp_path, "swift-mytuner")
    env = {"PYTHONPATH": str(site)}
    ui = WebUI(tmp_path / "a", env=env)
    try:
        names = {f["name"] for f in ui.client.get("/api/commands/sft").json()["fields"]}
        assert "mytuner_include_norms" in names
        assert "mytuner" in ui.client.get("/api/commands").json()["choices"]["tuner_type"]
    finally:
        ui.kill()
    policy = tmp_path / "policy.toml"
    policy.write_text('deny = ["swift-mytuner"]\n')
    ui = WebUI(tmp_path / "b", env={**env, "SWIFT_POLICY": str(policy)})
    try:
        names = {f["name"] for f in ui.client.get("/api/commands/sft").json()["fields"]}
        assert "mytuner_include_norms" not in names and "lora_rank" in names
    finally:
        ui.kill()


def test_a_job_survives_the_server_then_stops_and_resumes(tiny_qwen, tmp_path):
    data = task_file(tmp_path / "data.jsonl")
    ui = WebUI(tmp_path / "store")
    values = {"model": str(tiny_qwen), "dataset": [str(data)], **TRAIN, "max_steps": 400}
    job = ui.client.post("/api/jobs", json={"command": "sft", "values": values}).json()
    assert job["status"] in ("starting", "running") and job["resumable"]
    ui.wait(job["id"], until=("running",))
    ui.kill()  # the server dies; the job must not

    ui = WebUI(tmp_path / "store")
    try:
        listed = ui.client.get("/api/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]] and listed[0]["status"] == "running"
        deadline = time.time() + 120
        while not ui.client.get(f"/api/jobs/{job['id']}").json()["checkpoints"]:
            assert time.time() < deadline, "no checkpoint written"
            time.sleep(0.5)
        assert ui.client.post(f"/api/jobs/{job['id']}/resume").status_code == 409  # still running
        assert ui.client.post(f"/api/jobs/{job['id']}/stop").status_code == 200
        stopped = ui.wait(job["id"])
        assert stopped["status"] == "stopped", stopped
        saved = stopped["checkpoints"]
        assert saved and len(stopped["metrics"]) >= 1

        spec = json.loads((tmp_path / "store" / "jobs" / job["id"] / "job.json").read_text())
        spec["argv"][spec["argv"].index("--max_steps") + 1] = str(_step(saved[-1]) + 4)  # finish soon
        (tmp_path / "store" / "jobs" / job["id"] / "job.json").write_text(json.dumps(spec))
        resumed = ui.client.post(f"/api/jobs/{job['id']}/resume").json()
        assert resumed["attempt"] == 2
        done = ui.wait(job["id"])
        assert done["status"] == "finished" and done["returncode"] == 0, done
        log = ui.client.get(f"/api/jobs/{job['id']}/log").json()["text"]
        assert f"resuming from {saved[-1]}" in log
        assert _step(done["checkpoints"][-1]) == _step(saved[-1]) + 4
    finally:
        ui.kill()


def _step(checkpoint: str) -> int:
    return int(checkpoint.rsplit("-", 1)[1])


def test_events_carry_log_metrics_and_status_without_repeats(tiny_qwen, tmp_path):
    data = task_file(tmp_path / "data.jsonl")
    client = TestClient(create_app(tmp_path / "store"))
    values = {"model": str(tiny_qwen), "dataset": [str(data)], **TRAIN, "max_steps": 3, "save_steps": 3}
    job = client.post("/api/jobs", json={"command": "sft", "values": values}).json()
    deadline = time.time() + 180
    while client.get(f"/api/jobs/{job['id']}").json()["status"] not in ("finished", "failed"):
        assert time.time() < deadline
        time.sleep(0.5)
    detail = client.get(f"/api/jobs/{job['id']}").json()
    assert detail["status"] == "finished", client.get(f"/api/jobs/{job['id']}/log").json()["text"]

    def events(query: str) -> list[tuple[str, dict]]:
        text = client.get(f"/api/jobs/{job['id']}/events{query}").text
        frames = [f for f in text.split("\n\n") if f.strip()]
        return [
            (
                re.search(r"^event: (.*)$", f, re.M).group(1),
                json.loads(re.search(r"^data: (.*)$", f, re.M).group(1)),
            )
            for f in frames
        ]

    first = events("")
    kinds = [k for k, _ in first]
    assert kinds[-1] == "end" and "status" in kinds
    log_offset = max(d["offset"] for k, d in first if k == "log")
    metric_rows = [r for k, d in first if k == "metric" for r in d["rows"]]
    assert [r["step"] for r in metric_rows if "loss" in r] == [1, 2, 3]
    again = events(f"?log_offset={log_offset}&metric_offset={len(metric_rows)}")
    assert [k for k, _ in again] == ["status", "end"]  # nothing repeated

    # The chat pane answers from the job's checkpoint, as `swift infer` would (greedy).
    checkpoint = detail["checkpoints"][-1]
    r = client.post(
        "/api/chat",
        json={"target": checkpoint, "messages": [{"role": "user", "content": "3 + 4 ="}], "max_tokens": 6},
    )
    assert r.status_code == 200
    streamed = "".join(json.loads(m)["text"] for m in re.findall(r"event: delta\ndata: (.*)\n", r.text))
    assert r.text.rstrip().endswith("event: done\ndata: {}")
    rows = tmp_path / "q.jsonl"
    rows.write_text(json.dumps({"messages": [{"role": "user", "content": "3 + 4 ="}]}) + "\n")
    out = tmp_path / "answers.jsonl"
    infer = run_swift(
        "infer",
        "--adapters",
        checkpoint,
        "--val_dataset",
        str(rows),
        "--max_new_tokens",
        "6",
        "--temperature",
        "0",
        "--result_path",
        str(out),
    )
    assert infer.returncode == 0, infer.stderr
    assert json.loads(out.read_text().splitlines()[0])["response"] == streamed
    assert client.post("/api/chat", json={"target": checkpoint, "messages": "hi"}).status_code == 400


def test_every_route_needs_the_token_when_one_is_set(tmp_path):
    client = TestClient(create_app(tmp_path, token="s3cret"), follow_redirects=False)
    for path in ("/", "/static/app.js", "/api/jobs", "/api/commands", "/api/health"):
        assert client.get(path).status_code == 401, path
    assert client.get("/", params={"token": "wrong"}).status_code == 401
    r = client.get("/", params={"token": "s3cret"})
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    assert client.get("/api/jobs").status_code == 200  # the cookie, as the page's own requests
    client.cookies.clear()
    assert client.get("/api/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize(
    ("flags", "env", "expect"),
    [
        (["--host", "0.0.0.0"], {}, "generated"),
        (["--host", "0.0.0.0", "--api_key", "k"], {}, "k"),
        ([], {}, None),
        ([], {"SWIFT_WEBUI_KEY": "fromenv"}, "fromenv"),
        (["--api_key", ""], {}, "error"),
    ],
)
def test_beyond_loopback_there_is_always_a_token(monkeypatch, flags, env, expect):
    from swift_core.cli.main import cli
    from swift_core.webui import command

    seen = {}
    monkeypatch.setattr(
        command, "_serve", lambda host, port, token, work_dir, engine: seen.update(token=token)
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["web-ui", *flags])
    if expect == "error":
        assert result.exit_code != 0 and "--api_key is empty" in str(result.exception)
    elif expect == "generated":
        assert result.exit_code == 0 and len(seen["token"]) >= 20
    else:
        assert result.exit_code == 0 and seen["token"] == expect


def test_web_ui_help_is_fast_and_lists_its_flags():
    r = run_swift("web-ui", "--help")
    assert r.returncode == 0 and "--work_dir" in r.stdout and "--host" in r.stdout
    assert "web-ui" in run_swift("--help").stdout
