"""`download_model` and `swift download` against a local fake Hub (swift_core.testing.fake_hub): no network.

The conftest switches huggingface_hub offline for every test; the `online` fixture switches it back on
(environment and huggingface_hub's import-time copy) and points every cache at tmp_path.
ModelScope is tested against a fake `modelscope` module put in sys.modules (the real one is not installed).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import REPO

from swift_core.cli.download_cmd import DownloadArguments, download
from swift_core.config.arguments import parse_arguments
from swift_core.errors import SwiftError
from swift_core.models import download as dl
from swift_core.models.download import download_model
from swift_core.testing.fake_hub import FakeHub, etag_of

REPO_ID = "org/tiny"
FAST = 5.0  # seconds: an offline/unreachable failure must come back within this


def _bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


FILES = {
    "config.json": b'{"model_type": "llama", "hidden_size": 8}\n',
    "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}\n',
    "model.safetensors": _bytes(2 * 1024 * 1024 + 123, seed=1),
}


@pytest.fixture
def online(monkeypatch, tmp_path):
    """huggingface_hub allowed online, all its folders under tmp_path, no endpoint from the user's shell."""
    import huggingface_hub.constants as hf_constants

    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # read once, at import, by huggingface_hub
    home, cache = tmp_path / "hf_home", tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return cache


@pytest.fixture
def hub():
    with FakeHub() as fake:
        fake.add_repo(REPO_ID, FILES)
        yield fake


def _repo_files(folder: Path) -> dict[str, bytes]:
    out = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0] == ".cache" or not path.is_file():
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".incomplete")]


# -- downloads ------------------------------------------------------------------------------------------


def test_download_into_local_dir_is_byte_identical(online, hub, tmp_path, capsys):
    target = tmp_path / "out"
    path = download_model(REPO_ID, local_dir=str(target), endpoint=hub.url)
    assert path == target.resolve()
    assert _repo_files(path) == FILES
    assert not any(p.is_symlink() for p in path.iterdir())
    assert not _leftovers(target)
    # the summary: one line with files, size, seconds, path
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"Downloaded {REPO_ID}: 3 files, 2.0 MB in ") and out[0].endswith(f"s -> {path}")
    # huggingface_hub asked the fake hub, nothing else
    assert any(r.path == f"/api/models/{REPO_ID}/revision/main" for r in hub.requests)
    assert {
        r.path.rsplit("/", 1)[-1] for r in hub.requests if r.method == "GET" and "/resolve/" in r.path
    } == set(FILES)


def test_download_into_the_cache_under_hf_hub_cache(online, hub, monkeypatch, tmp_path, capsys):
    # huggingface_hub read HF_HUB_CACHE at import (`online` patched its copy); a new value must still count
    cache = tmp_path / "cache_set_later"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    path = download_model(REPO_ID, endpoint=hub.url)
    assert path.is_relative_to(cache)
    assert path.parent.name == "snapshots" and path.parent.parent.name == "models--org--tiny"
    assert _repo_files(path) == FILES
    assert not online.exists()
    blob = cache / "models--org--tiny" / "blobs" / etag_of("model.safetensors", FILES["model.safetensors"])
    assert blob.read_bytes() == FILES["model.safetensors"]
    assert "3 files" in capsys.readouterr().out
    # a second call finds everything cached and downloads no file again
    hub.clear_requests()
    assert download_model(REPO_ID, endpoint=hub.url) == path
    assert not [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]


def test_hf_endpoint_is_read_when_called(online, hub, monkeypatch, tmp_path):
    # huggingface_hub read HF_ENDPOINT at import (unset then); setting it now must still count
    monkeypatch.setenv("HF_ENDPOINT", hub.url + "/")
    path = download_model(REPO_ID, local_dir=str(tmp_path / "out"))
    assert _repo_files(path) == FILES
    assert hub.gets("config.json")


def test_revision_is_passed_through(online, hub, tmp_path):
    v1 = {"config.json": b'{"version": 1}\n', "model.safetensors": _bytes(4096, seed=2)}
    sha = hub.add_repo(REPO_ID, v1, revision="v1.0")
    path = download_model(REPO_ID, revision="v1.0", local_dir=str(tmp_path / "v1"), endpoint=hub.url)
    assert _repo_files(path) == v1
    paths = [r.path for r in hub.requests]
    assert f"/api/models/{REPO_ID}/revision/v1.0" in paths
    assert f"/{REPO_ID}/resolve/{sha}/config.json" in paths
    assert not any("/revision/main" in p for p in paths)
    # a commit hash needs no look-up
    hub.clear_requests()
    path = download_model(REPO_ID, revision=sha, local_dir=str(tmp_path / "by_sha"), endpoint=hub.url)
    assert _repo_files(path) == v1
    assert not any("/revision/" in r.path for r in hub.requests)


def test_interrupted_file_is_resumed_with_a_range_request(online, tmp_path):
    """The server drops the connection once, mid-file; the download resumes where it stopped.

    huggingface_hub (file_download.http_get) retries a dropped body with `Range: bytes=N-`, N being what it
    wrote to its `.incomplete` file. It writes in DOWNLOAD_CHUNK_SIZE (10 MB) pieces, so the file must be
    larger than one piece for N to be above 0.
    """
    import huggingface_hub.constants as hf_constants

    piece = hf_constants.DOWNLOAD_CHUNK_SIZE
    big = _bytes(piece + 2 * 1024 * 1024, seed=3)
    cut = piece + 1024 * 1024
    with FakeHub() as fake:
        fake.add_repo(REPO_ID, {"config.json": FILES["config.json"], "model.safetensors": big})
        fake.fail_next(REPO_ID, "model.safetensors", "cut", at=cut)
        path = download_model(REPO_ID, local_dir=str(tmp_path / "out"), endpoint=fake.url)
        gets = fake.gets("model.safetensors")
    assert (path / "model.safetensors").read_bytes() == big
    assert [g.range for g in gets][0] is None
    assert len(gets) == 2 and gets[1].range is not None
    start = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= cut  # resumed, not started over
    assert not _leftovers(tmp_path / "out")


@pytest.mark.parametrize("where", ["local_dir", "cache"])
def test_failed_download_leaves_no_file_that_looks_finished(online, hub, tmp_path, where):
    """A file cut short (and the retry refused) never appears under its final name; a rerun completes it.

    Files finished by the failed run are not downloaded again.
    """
    hub.fail_next(REPO_ID, "model.safetensors", "cut", at=1024 * 1024)
    hub.fail_next(REPO_ID, "model.safetensors", "status", status=500)
    local_dir = str(tmp_path / "out") if where == "local_dir" else None
    with pytest.raises(SwiftError, match="org/tiny"):
        download_model(REPO_ID, local_dir=local_dir, endpoint=hub.url)

    if where == "local_dir":
        root = tmp_path / "out"
        assert not (root / "model.safetensors").exists()
        assert (root / "config.json").read_bytes() == FILES["config.json"]
    else:
        root = online / "models--org--tiny"
        assert not list(root.glob("snapshots/*/model.safetensors"))
        assert not (root / "blobs" / etag_of("model.safetensors", FILES["model.safetensors"])).exists()
    # every file present under its final name is complete
    for name, data in _repo_files(root).items():
        if name in FILES:
            assert data == FILES[name], name
    assert not _leftovers(root)

    hub.clear_requests()
    path = download_model(REPO_ID, local_dir=local_dir, endpoint=hub.url)
    assert _repo_files(path) == FILES
    assert hub.gets("model.safetensors")
    assert not hub.gets("config.json") and not hub.gets("tokenizer.json")


# -- errors ---------------------------------------------------------------------------------------------


def test_unknown_repo_names_the_id(online, hub, tmp_path):
    with pytest.raises(SwiftError) as info:
        download_model("org/no-such-model", local_dir=str(tmp_path / "out"), endpoint=hub.url)
    message = str(info.value)
    assert "'org/no-such-model' was not found" in message and hub.url in message
    assert not (tmp_path / "out").exists() or not _repo_files(tmp_path / "out")


def test_bare_404_from_a_mirror_names_the_id(online, hub):
    hub.error_codes = False  # no X-Error-Code: huggingface_hub cannot tell "not found" from "hub down"
    with pytest.raises(SwiftError, match="model 'org/no-such-model' was not found .*HTTP 404"):
        download_model("org/no-such-model", endpoint=hub.url)


def test_unknown_revision_names_it(online, hub):
    with pytest.raises(SwiftError, match="revision 'v9' of model 'org/tiny' was not found"):
        download_model(REPO_ID, revision="v9", endpoint=hub.url)


def test_invalid_repo_id_is_a_swift_error(online, hub):
    with pytest.raises(SwiftError, match="invalid model id"):
        download_model("a/b/c", endpoint=hub.url)


def test_hf_hub_offline_fails_at_once(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the conftest sets it too; be explicit
    start = time.monotonic()
    with pytest.raises(SwiftError) as info:
        download_model(REPO_ID, endpoint=hub.url)
    assert time.monotonic() - start < FAST
    assert "offline" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value) and REPO_ID in str(info.value)
    assert hub.requests == []


def test_offline_from_huggingface_hub_import_time_setting(online, hub, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # environment says online, the library won't
    with pytest.raises(SwiftError, match="HF_HUB_OFFLINE"):
        download_model(REPO_ID, endpoint=hub.url)
    assert hub.requests == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_fails_fast_with_a_plain_message(online):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(SwiftError) as info:
        download_model(REPO_ID, endpoint=endpoint)
    assert time.monotonic() - start < FAST
    message = str(info.value)
    assert message.startswith(f"cannot reach {endpoint}: ")
    assert "check your network, or set HF_ENDPOINT to a mirror" in message


def test_silent_endpoint_times_out_quickly(online, monkeypatch):
    assert dl.CHECK_TIMEOUT <= 5  # "a few seconds at most"
    monkeypatch.setattr(dl, "CHECK_TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(SwiftError, match="no answer within 0.5s"):
            download_model(REPO_ID, endpoint=endpoint)
        assert time.monotonic() - start < 2.5


def test_unknown_hub_is_refused():
    with pytest.raises(SwiftError, match="unknown hub 'xx'"):
        download_model(REPO_ID, hub="xx")


# -- ModelScope -----------------------------------------------------------------------------------------


def test_modelscope_missing_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # makes `import modelscope` fail
    with pytest.raises(SwiftError, match="pip install modelscope"):
        download_model("qwen/Qwen2-0.5B", hub="ms")


@pytest.fixture
def fake_modelscope(monkeypatch, tmp_path):
    """A stand-in `modelscope` module (not the real package): records calls, writes two files."""
    calls: list[tuple[tuple, dict]] = []
    module = types.ModuleType("modelscope")

    def snapshot_download(model_id, **kwargs):
        calls.append(((model_id,), kwargs))
        if model_id == "broken/model":
            raise ValueError("The model: broken/model not exists")
        folder = Path(kwargs.get("local_dir") or tmp_path / "ms_cache" / model_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_bytes(b"{}")
        (folder / "model.safetensors").write_bytes(b"\0" * 2048)
        return str(folder)

    module.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "modelscope", module)
    return calls


def test_modelscope_call_path(fake_modelscope, tmp_path, capsys):
    target = tmp_path / "ms_out"
    path = download_model("qwen/Qwen2-0.5B", hub="ms", revision="v1.0", local_dir=str(target))
    assert path == target
    assert fake_modelscope == [(("qwen/Qwen2-0.5B",), {"revision": "v1.0", "local_dir": str(target)})]
    assert "Downloaded qwen/Qwen2-0.5B: 2 files, 2.0 KB in " in capsys.readouterr().out
    # defaults are left to modelscope; HF_HUB_OFFLINE (set by the conftest) does not concern ModelScope
    path = download_model("qwen/Qwen2-0.5B", hub="ms")
    assert fake_modelscope[-1] == (("qwen/Qwen2-0.5B",), {})
    assert path == tmp_path / "ms_cache" / "qwen/Qwen2-0.5B"


def test_modelscope_failure_is_a_swift_error(fake_modelscope):
    with pytest.raises(SwiftError, match="downloading 'broken/model' from ModelScope failed: ValueError"):
        download_model("broken/model", hub="ms")


# -- the command ----------------------------------------------------------------------------------------


def test_arguments_and_aliases():
    args = parse_arguments(DownloadArguments, ["--model", "a/b", "--hub_type", "ms", "--local-dir", "/x"])
    assert (args.model, args.hub, args.revision, args.local_dir) == ("a/b", "ms", None, "/x")
    with pytest.raises(SwiftError, match="missing required argument.*--model"):
        parse_arguments(DownloadArguments, ["--hub", "hf"])
    with pytest.raises(SwiftError, match="not one of hf, ms"):
        parse_arguments(DownloadArguments, ["--model", "a/b", "--hub", "xx"])


def test_cli_downloads_and_prints_the_summary(online, hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    target = tmp_path / "cli_out"
    result = CliRunner().invoke(
        download, ["--model", REPO_ID, "--local_dir", str(target), "--revision", "main"]
    )
    assert result.exit_code == 0, result.output
    assert f"Downloaded {REPO_ID}: 3 files, 2.0 MB in " in result.output and str(target) in result.output
    assert _repo_files(target) == FILES


def test_cli_failure_exits_non_zero_with_the_message(online, hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = CliRunner().invoke(download, ["--model", "org/missing"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SwiftError)
    assert "'org/missing' was not found" in str(result.exception)


def test_cli_help_lists_the_arguments():
    result = CliRunner().invoke(download, ["--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--hub {hf,ms}", "--hub_type", "--revision", "--local_dir"):
        assert flag in result.output


def test_swift_download_as_a_user_runs_it(online, hub, tmp_path):
    """A fresh process through `swift`'s main: summary on success; `Error: ...` and exit 2, no traceback."""
    code = (
        "import sys; from swift_core.cli.main import CORE_COMMANDS, main; "
        "CORE_COMMANDS.setdefault('download', ('swift_core.cli.download_cmd:download', 'Download a model.')); "
        "main(sys.argv[1:])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_CACHE=str(online))
    target = tmp_path / "proc_out"

    def swift(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, "download", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
        )

    ok = swift("--model", REPO_ID, "--local_dir", str(target))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"Downloaded {REPO_ID}: 3 files") and _repo_files(target) == FILES
    bad = swift("--model", "org/missing")
    assert bad.returncode == 2
    assert "Error: model 'org/missing' was not found" in bad.stderr and "Traceback" not in bad.stderr
    env["HF_HUB_OFFLINE"] = "1"
    offline = swift("--model", REPO_ID)
    assert (
        offline.returncode == 2
        and "offline mode is on" in offline.stderr
        and "Traceback" not in offline.stderr
    )


def test_aliases_resolve_to_hub_ids_for_each_hub():
    from swift_core.cli.download_cmd import hub_id_for

    assert hub_id_for("Qwen/Qwen2.5-7B-Instruct", "hf") == "Qwen/Qwen2.5-7B-Instruct"
    assert hub_id_for("qwen2_5-7b-instruct", "hf") == "Qwen/Qwen2.5-7B-Instruct"
    assert hub_id_for("llama3-8b-instruct", "ms") == "LLM-Research/Meta-Llama-3-8B-Instruct"
