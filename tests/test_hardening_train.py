"""Issue 11, training: a finished run is not trained further (5), --output_dir faults are one line
and exit 2 (6), Ctrl-C says where it stopped (exit 130), progress without a terminal.

Each test failed before its fix: resuming a run at --max_steps trained one step more
(checkpoint-N+1), an unusable --output_dir raised a Python traceback, Ctrl-C exited 1 without a word.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import install_fixture, run_swift

from swift_core.errors import SwiftError


def _data(tmp_path: Path, n: int = 16) -> Path:
    path = tmp_path / "d.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sft(model, data, out, *extra, env=None):
    return run_swift(
        "sft",
        "--model",
        str(model),
        "--dataset",
        str(data),
        "--output_dir",
        str(out),
        "--per_device_train_batch_size",
        "4",
        "--logging_steps",
        "1",
        *extra,
        env=env,
    )


# --- 5: a finished run ------------------------------------------------------------------------


@pytest.mark.slow
def test_resuming_a_finished_run_says_so_and_trains_nothing(tiny_qwen, tmp_path):
    out = tmp_path / "out"
    common = ("--max_steps", "2", "--save_steps", "2", "--lr_scheduler_type", "constant")
    first = _sft(tiny_qwen, _data(tmp_path), out, *common)
    assert first.returncode == 0, first.stderr
    # No terminal: plain progress lines, not one long line of carriage returns.
    assert "\r" not in first.stderr and "step 2/2" in first.stderr
    ckpt = next(out.glob("v0-*/checkpoint-2"))
    before = (ckpt / "adapter_model.safetensors").read_bytes()
    again = _sft(tiny_qwen, _data(tmp_path), out, *common, "--resume_from_checkpoint", "auto")
    assert again.returncode == 0, again.stderr
    assert "already" in again.stderr and "--max_steps 2" in again.stderr
    assert not list(out.glob("v*/checkpoint-3"))
    assert (ckpt / "adapter_model.safetensors").read_bytes() == before


def _checkpoint(tmp_path: Path, step: int, epoch: float, max_steps: int) -> Path:
    ckpt = tmp_path / "run" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    state = {"global_step": step, "epoch": epoch, "max_steps": max_steps}
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    return ckpt


def test_finished_by_epochs_or_steps(tmp_path):
    from swift_core.train.outputs import finished_message

    done = _checkpoint(tmp_path, 8, 2.0, 8)
    assert "--num_train_epochs 2" in finished_message(done, SimpleNamespace(max_steps=-1, num_train_epochs=2))
    assert finished_message(done, SimpleNamespace(max_steps=-1, num_train_epochs=3)) is None
    assert "--max_steps 8" in finished_message(done, SimpleNamespace(max_steps=8, num_train_epochs=1))
    assert finished_message(done, SimpleNamespace(max_steps=9, num_train_epochs=1)) is None


# --- 6: --output_dir faults ---------------------------------------------------------------------


def test_output_dir_that_is_a_file_or_under_a_file(tmp_path):
    from swift_core.train.outputs import new_run_dir

    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in (a_file, a_file / "sub"):
        with pytest.raises(SwiftError) as err:
            new_run_dir(str(target))
        message = str(err.value)
        assert "\n" not in message and str(a_file) in message and "--output_dir" in message
        assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "code, cause", [(errno.EACCES, "permission"), (errno.EROFS, "read-only"), (errno.ENOSPC, "no space")]
)
def test_output_dir_not_writable_or_disk_full(tmp_path, monkeypatch, code, cause):
    """Root ignores permission bits on this machine, so the OS error is injected."""
    import os

    from swift_core.train.outputs import new_run_dir

    def refuse(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(SwiftError) as err:
        new_run_dir(str(tmp_path / "out"))
    assert str(tmp_path / "out") in str(err.value) and cause in str(err.value).lower()


def test_disk_full_while_training_is_one_line(tmp_path):
    from swift_core.train.pipeline import train_and_summarize

    class FullDisk:
        state = SimpleNamespace(global_step=3, max_steps=10, log_history=[])
        callback_handler = SimpleNamespace(callbacks=[])

        def train(self, resume_from_checkpoint=None):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoint-4" / "x.pt"))

    manager = SimpleNamespace(hook=SimpleNamespace(before_train=lambda **k: None))
    with pytest.raises(SwiftError) as err:
        train_and_summarize(FullDisk(), None, tmp_path, 0.0, SimpleNamespace(), manager)
    message = str(err.value)
    assert "checkpoint-4" in message and "no space left" in message.lower() and "\n" not in message
    assert err.value.exit_code == 2


@pytest.mark.slow
def test_sft_with_output_dir_under_a_file_exits_2(tiny_qwen, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    r = _sft(tiny_qwen, _data(tmp_path), blocker / "out", "--max_steps", "1")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and str(blocker) in r.stderr


# --- Ctrl-C -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_says_where_it_stopped_and_writes_the_plot(tiny_qwen, tmp_path):
    site = install_fixture(tmp_path, "swift-killer")
    out = tmp_path / "out"
    r = _sft(
        tiny_qwen,
        _data(tmp_path),
        out,
        "--max_steps",
        "6",
        "--save_steps",
        "2",
        env={"PYTHONPATH": str(site), "SWIFT_SIGINT_AT_STEP": "3"},
    )
    assert r.returncode == 130, r.stderr
    assert "step 3" in r.stderr and "--resume_from_checkpoint" in r.stderr
    assert "Traceback" not in r.stderr
    assert next(out.glob("v0-*/loss.png")).read_bytes()[:4] == b"\x89PNG"


def test_a_full_disk_anywhere_in_a_command_is_one_line(monkeypatch, capsys):
    """The CLI's safety net: an ENOSPC outside training (args.json, an export) is no traceback."""
    import os

    from swift_core.cli import main as cli_main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out/args.json")

    monkeypatch.setattr(cli_main.cli, "main", full)
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["sft"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "/data/out/args.json" in err and "no space left on device" in err and "Traceback" not in err
