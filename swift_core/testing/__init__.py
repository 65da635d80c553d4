"""Swift's test kit, for the core's tests and for plugin authors (installed with swift-core).

A plugin tests from its own distribution with it: nothing here reads the Swift repository.

    environment   setup_test_environment() (one thread, hubs offline), one_thread(),
                  isolated_plugins(), POLICY_ENV
    plugins       plugin_manager(*sources), plugin_source(name, module), builtin_manager()
    models        tiny_model(folder, family), tiny_tokenizer(template), token_batch(folder),
                  random_token_batch(vocab_size), load_model(folder), generate_corpus(n)
    datasets      write_chat_dataset(folder), write_preference_dataset(folder),
                  write_pretraining_dataset(folder), write_jsonl(path, rows)
    hub           FakeHub (a local Hugging Face Hub file API), in swift_core.testing.fake_hub
    processes     pip_install_target(target, *projects), pythonpath(*folders), run_swift(*args)
    engines       EnginePlugin, run_async(coro), collect(engine, request), wait_for(predicate),
                  fake_library(path, names, close), tiny_model_and_adapters(root, manager),
                  assert_registers_without_importing(plugin), assert_entry_point(plugin),
                  assert_missing_library_says_what_to_install(plugin, manager)
    contracts     check_tuner(name, manager), check_alignment_loss(name, manager),
                  check_quantizer(name, manager), check_engine(name, manager), ContractFailure

Importing this package imports nothing heavy (the names load on first use, and torch,
transformers and peft only inside the functions that need them), so a plugin's light tests and
`swift --help` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DEFAULT_ENV": "env",
    "FORCED_ENV": "env",
    "POLICY_ENV": "env",
    "isolated_plugins": "env",
    "one_thread": "env",
    "setup_test_environment": "env",
    "without_policy": "env",
    "builtin_manager": "managers",
    "plugin_manager": "managers",
    "plugin_source": "managers",
    "load_model": "models",
    "random_token_batch": "models",
    "tiny_model": "models",
    "tiny_tokenizer": "models",
    "token_batch": "models",
    "DatasetFiles": "datasets",
    "chat_rows": "datasets",
    "preference_rows": "datasets",
    "write_chat_dataset": "datasets",
    "write_jsonl": "datasets",
    "write_preference_dataset": "datasets",
    "write_pretraining_dataset": "datasets",
    "FakeHub": "fake_hub",
    "pip_install_target": "install",
    "pythonpath": "install",
    "run_swift": "install",
    "EnginePlugin": "engines",
    "assert_entry_point": "engines",
    "assert_missing_library_says_what_to_install": "engines",
    "assert_registers_without_importing": "engines",
    "collect": "engines",
    "fake_library": "engines",
    "installed": "engines",
    "run_async": "engines",
    "tiny_model_and_adapters": "engines",
    "wait_for": "engines",
    "ContractFailure": "contract",
    "ContractReport": "contract",
    "check_tuner": "tuner_contract",
    "tuner_args": "tuner_contract",
    "check_alignment_loss": "loss_contract",
    "loss_config": "loss_contract",
    "loss_inputs": "loss_contract",
    "check_quantizer": "quantizer_contract",
    "quantizer_args": "quantizer_contract",
    "check_engine": "engine_contract",
    "engine_config": "engine_contract",
}
# Re-exported from the core, where the code lives (shared with the benchmarks and the demo).
_CORE: dict[str, str] = {"generate_corpus": "swift_core.models.corpus"}

__all__ = sorted([*_EXPORTS, *_CORE])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    elif name in _CORE:
        module = importlib.import_module(_CORE[name])
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
