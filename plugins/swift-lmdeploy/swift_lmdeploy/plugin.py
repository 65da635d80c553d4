"""Hooks of swift-lmdeploy. Light on purpose: nothing of lmdeploy, torch or transformers is
imported here; the engine module is imported only when the engine is selected, so `swift --help`
and `swift plugins list` work where LMDeploy (a CUDA-only library) is not installed."""

from __future__ import annotations

from swift_core import hookimpl
from swift_core.descriptors import EngineDescriptor


@hookimpl
def register_engines(register):
    register(
        EngineDescriptor(
            name="lmdeploy",
            description="LMDeploy: TurboMind or PyTorch backend, LoRA per request (PyTorch), streaming, "
            "logprobs (GPU: pip install 'swift-lmdeploy[gpu]')",
            factory="swift_lmdeploy.engine:LmdeployEngine",
            requires=("lmdeploy",),
        )
    )
