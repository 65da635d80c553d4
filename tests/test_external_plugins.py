"""External plugins as users meet them: pip-installed distributions found through entry points.

The fixture distributions are installed with pip into a private folder (`--target`) and the CLI
runs in a fresh process with that folder on PYTHONPATH, so discovery goes through real
`*.dist-info/entry_points.txt` files.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, pip_install_target, run_swift

pytestmark = pytest.mark.slow


def _plugins(site, **env):
    out = run_swift("plugins", "list", "--json", env={"PYTHONPATH": str(site), **env})
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)}, out


def test_installed_plugins_are_discovered(installed_fixture_plugins, tmp_path):
    marker = tmp_path / "imported"
    rows, out = _plugins(installed_fixture_plugins, SWIFT_TEST_IMPORT_MARKER=str(marker))
    hello = rows["hello"]
    assert hello["status"] == "loaded"
    assert (hello["distribution"], hello["version"]) == ("swift-hello", "1.2.0")
    assert hello["capabilities"] == {"engines": ["echo"], "templates": ["hello-chat"]}
    broken = rows["broken"]
    assert broken["status"] == "failed" and "broken on purpose" in broken["reason"]
    assert "plugin 'broken' (swift-broken) failed to load" in out.stderr
    assert rows["forbidden"]["status"] == "loaded" and marker.exists()


def test_plugin_command_with_dataclass_arguments(installed_fixture_plugins, tmp_path):
    env = {"PYTHONPATH": str(installed_fixture_plugins)}
    assert re.search(
        r"^  hello\s+Print a greeting \(example plugin\)\.", run_swift("--help", env=env).stdout, re.M
    )
    out = run_swift("hello", "--name", "swift", "--repeat", "2", "--shout", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["HELLO, SWIFT", "HELLO, SWIFT"]
    cfg = tmp_path / "hello.yaml"
    cfg.write_text("name: yaml\ntimes: 1\n")
    assert run_swift("hello", str(cfg), env=env).stdout.strip() == "hello, yaml"
    bad = run_swift("hello", "--nmae", "x", env=env)
    assert bad.returncode == 2 and "did you mean --name" in bad.stderr
    assert "--times INT" in run_swift("hello", "--help", env=env).stdout


def test_policy_blocks_without_importing(installed_fixture_plugins, tmp_path):
    marker = tmp_path / "imported"
    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\nswift-hello = "<1.0"\nswift-broken = ""\n')
    rows, _ = _plugins(
        installed_fixture_plugins, SWIFT_POLICY=str(policy), SWIFT_TEST_IMPORT_MARKER=str(marker)
    )
    assert rows["forbidden"]["status"] == "blocked" and "not in the allow list" in rows["forbidden"]["reason"]
    assert not marker.exists()
    assert rows["hello"]["status"] == "blocked" and "1.2.0 does not satisfy '<1.0'" in rows["hello"]["reason"]
    # the blocked plugin's capabilities are unknown names, and the error says why
    code = "from swift_core.plugins import get_plugin_manager as g; g().get('engines', 'echo')"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(installed_fixture_plugins), "SWIFT_POLICY": str(policy), "PATH": "/usr/bin"},
    )
    assert "unknown engine 'echo'" in out.stderr and "hello (blocked)" in out.stderr


def test_load_plugins_env_and_unknown_name_warning(installed_fixture_plugins):
    rows, out = _plugins(installed_fixture_plugins, SWIFT_LOAD_PLUGINS="hello,helo")
    assert rows["hello"]["status"] == "loaded"
    assert rows["broken"]["status"] == "blocked"
    assert "SWIFT_LOAD_PLUGINS names unknown plugins: helo" in out.stderr and "hello" in out.stderr


def test_scaffolded_plugin_installs_and_is_discovered(tmp_path):
    out = run_swift("plugins", "new", "acme", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    root = tmp_path / "swift-acme"
    assert (root / "pyproject.toml").is_file() and (root / "swift_acme" / "plugin.py").is_file()
    site = pip_install_target(tmp_path / "site", root)
    rows, _ = _plugins(site)
    assert rows["acme"]["status"] == "loaded"
    assert rows["acme"]["capabilities"] == {"templates": ["acme-template"]}
    # the scaffold's own test passes against the installed plugin
    test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin"},
        cwd=tmp_path,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    again = run_swift("plugins", "new", "acme", "--dir", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_plugins_install_refuses_what_the_policy_denies(tmp_path, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text('deny = ["swift-evil"]\n[allow]\nswift-hello = ">=1,<2"\n')
    out = run_swift("plugins", "install", "swift-evil", env={"SWIFT_POLICY": str(policy)})
    assert out.returncode == 2 and "refusing to install 'swift-evil': it is denied by policy" in out.stderr
    out = run_swift("plugins", "install", "swift-other", env={"SWIFT_POLICY": str(policy)})
    assert out.returncode == 2 and "not in the allow list" in out.stderr


def test_plugins_install_pins_torch_and_policy_versions(tmp_path, monkeypatch):
    """pip itself is replaced by a recorder: the test checks the command Swift builds."""
    from click.testing import CliRunner

    from swift_core.cli import plugins_cmd

    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\nswift-hello = ">=1,<2"\n')
    monkeypatch.setenv("SWIFT_POLICY", str(policy))
    seen = {}

    def fake_call(command):
        seen["command"] = command
        seen["constraints"] = Path(command[command.index("-c") + 1]).read_text().split()
        return 0

    monkeypatch.setattr(plugins_cmd.subprocess, "call", fake_call)
    result = CliRunner().invoke(plugins_cmd.plugins, ["install", str(FIXTURES / "swift-hello")])
    assert result.exit_code == 0, result.output
    assert seen["command"][:4] == [sys.executable, "-m", "pip", "install"]
    assert str(FIXTURES / "swift-hello") in seen["command"]
    import torch

    assert f"torch=={torch.__version__}" in seen["constraints"]
    assert "swift-hello<2,>=1" in seen["constraints"] or "swift-hello>=1,<2" in seen["constraints"]
