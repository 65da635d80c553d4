import pytest

from swift_core.descriptors import EngineDescriptor, RuntimeDescriptor, TemplateDescriptor
from swift_core.errors import CapabilityLoadError, DuplicateCapabilityError, UnknownNameError
from swift_core.registry import Registries, Registry


def _engine(name, plugin="p1", dist="swift-p1", **kw):
    return EngineDescriptor(name=name, factory="json:dumps", **kw).with_origin(plugin, dist)


def test_duplicate_name_names_both_plugins():
    reg = Registry("engines", EngineDescriptor)
    reg.add(_engine("fast", "first", "swift-first"))
    with pytest.raises(DuplicateCapabilityError) as err:
        reg.add(_engine("fast", "second", "swift-second"))
    assert "'first' (swift-first)" in str(err.value) and "'second' (swift-second)" in str(err.value)


def test_alias_clash_is_a_duplicate_too():
    reg = Registry("engines", EngineDescriptor)
    reg.add(_engine("transformers", aliases=("pt",)))
    with pytest.raises(DuplicateCapabilityError, match="'pt'"):
        reg.add(_engine("pytorch", "other", aliases=("pt",)))
    assert reg.get("pt").name == "transformers"


def test_unknown_name_lists_available_nearest_and_provider():
    reg = Registries()["engines"]
    reg.add(_engine("transformers", aliases=("pt",)))
    with pytest.raises(UnknownNameError) as err:
        reg.get("vllm")
    message = str(err.value)
    assert "unknown engine 'vllm'" in message
    assert "Available: transformers" in message
    assert "swift-vllm" in message
    with pytest.raises(UnknownNameError, match="Did you mean 'transformers'"):
        reg.get("transformer")


def test_wrong_descriptor_type_is_refused():
    reg = Registry("runtimes", RuntimeDescriptor)
    with pytest.raises(TypeError, match="expected RuntimeDescriptor"):
        reg.add(TemplateDescriptor(name="x", plugin="p"))


def test_factory_is_lazy_and_load_errors_name_plugin_and_path():
    good = EngineDescriptor(name="j", factory="json:dumps")
    assert good.load()([1]) == "[1]"
    bad = EngineDescriptor(name="ghost", factory="no_such_module_xyz.engine:Engine").with_origin(
        "ghosts", "swift-ghosts"
    )
    with pytest.raises(CapabilityLoadError) as err:
        bad.load()
    assert "'ghosts' (swift-ghosts)" in str(err.value)
    assert "no_such_module_xyz.engine:Engine" in str(err.value)


def test_missing_requirement_is_named_with_install_hint():
    d = EngineDescriptor(name="big", factory="json:dumps", requires=("no-such-dist-xyz>=1.0",)).with_origin(
        "p", "d"
    )
    with pytest.raises(CapabilityLoadError, match="pip install 'no-such-dist-xyz>=1.0'"):
        d.load()


def test_bad_factory_spelling_is_rejected_at_registration():
    with pytest.raises(ValueError, match="module:attr"):
        EngineDescriptor(name="x", factory="json.dumps")
