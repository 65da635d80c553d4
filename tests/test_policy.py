import pytest

from swift_core.errors import PolicyError
from swift_core.policy import Policy, PolicyFile


def _write(tmp_path, text, name="policy.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_malformed_toml_names_file_and_line(tmp_path):
    path = _write(tmp_path, 'deny = ["a"]\nallow_builtins = true\n[allow\nswift-x = "1"\n')
    with pytest.raises(PolicyError) as err:
        PolicyFile.load(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("deny = []\nalow = 1\n", 2, "unknown key 'alow'"),
        ('[allow]\nswift-a = ">=1"\nswift-b = "not a spec"\n', 3, "not a PEP 440"),
        ('allow_builtins = "yes"\n', 1, "true or false"),
        ('\ndeny = "swift-a"\n', 2, "list of names"),
        ("[allow]\nswift-a = 1\n", 2, "must be a string"),
    ],
)
def test_schema_errors_name_the_line(tmp_path, text, line, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        PolicyFile.load(path)
    assert f"{path}, line {line}:" in str(err.value)
    assert fragment in str(err.value)


def test_allow_list_with_version_pins(tmp_path):
    path = _write(tmp_path, '[allow]\nswift-vllm = ">=0.2,<1"\nswift_bnb = "*"\n')
    policy = Policy([PolicyFile.load(path)])
    assert policy.check("vllm", "swift-vllm", "0.5.0", builtin=False).allowed
    old = policy.check("vllm", "swift-vllm", "0.1.0", builtin=False)
    assert not old.allowed and "0.1.0 does not satisfy" in old.reason
    assert policy.check("bnb", "swift-bnb", "9.9", builtin=False).allowed  # name normalised
    other = policy.check("x", "swift-other", "1.0", builtin=False)
    assert not other.allowed and "not in the allow list" in other.reason
    assert policy.check("runtime-cpu", "swift-core", "0.1.0", builtin=True).allowed


def test_builtins_can_be_disallowed(tmp_path):
    path = _write(tmp_path, 'allow_builtins = false\n[allow]\nswift-cuda = ""\n')
    policy = Policy([PolicyFile.load(path)])
    assert not policy.check("runtime-cpu", "swift-core", "0.1.0", builtin=True).allowed
    assert policy.check("cuda", "swift-cuda", "0.1.0", builtin=False).allowed


def test_strictest_wins_across_sources(tmp_path):
    loose = _write(tmp_path, '[allow]\nswift-a = ""\nswift-b = ""\n', "loose.toml")
    strict = _write(tmp_path, 'deny = ["swift-b"]\n', "strict.toml")
    env = {"SWIFT_POLICY": f"{loose}:{strict}", "SWIFT_LOAD_PLUGINS": "a,b,c", "SWIFT_DISABLE_PLUGINS": "a"}
    policy = Policy.from_env(env, system_path=tmp_path / "none.toml")
    assert not policy.check("a", "swift-a", "1", False).allowed  # disabled
    assert "denied by policy" in policy.check("b", "swift-b", "1", False).reason
    assert "not in the allow list" in policy.check("c", "swift-c", "1", False).reason
    assert "SWIFT_LOAD_PLUGINS" in policy.check("d", "swift-d", "1", False).reason


def test_empty_load_list_blocks_everything_including_builtins(tmp_path):
    policy = Policy.from_env({"SWIFT_LOAD_PLUGINS": ""}, system_path=tmp_path / "none.toml")
    assert not policy.check("runtime-cpu", "swift-core", "0.1", True).allowed


def test_system_policy_applies_when_present(tmp_path):
    system = _write(tmp_path, 'deny = ["swift-x"]\n', "system.toml")
    policy = Policy.from_env({}, system_path=system)
    assert not policy.check("x", "swift-x", "1", False).allowed


def test_install_check_refuses_denied_and_returns_pins(tmp_path):
    path = _write(tmp_path, 'deny = ["swift-evil"]\n[allow]\nswift-vllm = "<1"\nswift-evil = ""\n')
    policy = Policy([PolicyFile.load(path)])
    assert not policy.install_check("swift-evil")[0].allowed
    assert not policy.install_check("swift-unknown")[0].allowed
    decision, pin = policy.install_check("swift-vllm")
    assert decision.allowed and pin == "<1"
