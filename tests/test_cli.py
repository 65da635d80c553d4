"""The CLI as a user runs it: fresh processes, real exit codes."""

import json
import sys

import pytest
from helpers import run_swift


def test_help_lists_every_command_with_one_line():
    out = run_swift("--help")
    assert out.returncode == 0, out.stderr
    import re

    from swift_core.cli.main import CORE_COMMANDS

    for name, (_, short) in CORE_COMMANDS.items():
        assert re.search(rf"^  {name}\s+{re.escape(short[:30])}", out.stdout, re.MULTILINE), name


def test_version():
    from swift_core import __version__

    out = run_swift("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"swift {__version__}"


def test_unknown_command_suggests_the_nearest():
    out = run_swift("plugin", "list")
    assert out.returncode == 2
    assert "no such command 'plugin'" in out.stderr and "Did you mean 'plugins'" in out.stderr


def test_plugins_list_json_all_shows_builtins_with_capabilities():
    out = run_swift("plugins", "list", "--json", "--all")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    cpu = rows["runtime-cpu"]
    assert cpu["status"] == "loaded" and cpu["builtin"] and cpu["capabilities"] == {"runtimes": ["cpu"]}
    assert cpu["hooks"] == ["register_runtimes"]
    # without --all, built-ins are left out
    plain = json.loads(run_swift("plugins", "list", "--json").stdout)
    assert all(not r["builtin"] for r in plain)


def test_disable_plugin_option_blocks_it():
    out = run_swift("--disable-plugin", "runtime-cpu", "plugins", "list", "--all")
    assert out.returncode == 0, out.stderr
    assert "runtime-cpu  [blocked]  built-in" in out.stdout
    assert "why: disabled" in out.stdout


def test_malformed_policy_is_an_error_naming_file_and_line(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("deny = [\n")
    out = run_swift("--policy", str(policy), "plugins", "list")
    assert out.returncode == 2
    assert f"Error: policy file {policy}, line" in out.stderr
    assert "Traceback" not in out.stderr


def test_env_json_reports_versions_runtimes_plugins_and_policy(tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('deny = ["swift-nothing"]\n')
    out = run_swift("env", "--json", env={"SWIFT_POLICY": str(policy)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["libraries"]["swift-core"]
    assert data["python"] == sys.version.split()[0]
    assert {"name": "cpu"}.items() <= data["runtimes"][0].items() and data["runtimes"][0]["available"]
    assert data["policy"]["files"][0]["deny"] == ["swift-nothing"]
    text = run_swift("env", env={"SWIFT_POLICY": str(policy)}).stdout
    assert "runtimes:" in text and "cpu" in text and str(policy) in text


@pytest.mark.parametrize("args", [["--help"], ["plugins", "list"], ["plugins", "list", "--all", "--json"]])
def test_fast_commands_never_import_torch(args):
    code = (
        "import sys\n"
        "from swift_core.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stderr, out.stderr


def test_python_dash_m_runs_the_same_cli():
    out = run_swift("plugins", "--help")
    assert out.returncode == 0 and "list" in out.stdout and "install" in out.stdout and "new" in out.stdout
