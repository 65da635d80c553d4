"""The Ascend NPU runtime, through torch-npu.

`import torch_npu` registers the "npu" device type and `torch.npu` (an API shaped like
`torch.cuda`); it needs CANN's shared libraries, and torch-npu X.Y.Z works only with torch X.Y.Z.
The probe checks exactly these, in that order, so `swift env` says which one is wrong.

What differs from CUDA, as Ascend users of ms-swift and LLaMA-Factory meet it: bitsandbytes has no
Ascend kernels (no QLoRA); multi-card DDP runs need `ddp_find_unused_parameters=False`
(transformers otherwise turns the search on whenever gradient checkpointing is off); fused AdamW depends on the torch-npu/CANN release (plain AdamW is used); vLLM runs only
through the vllm-ascend platform plugin.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from swift_core.runtimes.base import HardwareRuntime, allocator_memory_stats
from swift_core.runtimes.support import Feature, RuntimeSupport

CANN_ENV = "source /usr/local/Ascend/ascend-toolkit/set_env.sh"


def release(version: str) -> tuple[int, ...]:
    """(major, minor, micro) of a torch or torch-npu version: "2.7.1.post1" / "2.7.1+cpu" -> (2, 7, 1)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


class AscendRuntime(HardwareRuntime):
    name = "npu"
    device_type = "npu"
    dist_backend = "hccl"
    visible_devices_env = "ASCEND_RT_VISIBLE_DEVICES"

    def _torch_npu(self) -> tuple[Any, str]:
        """(the torch_npu module, "") or (None, why it cannot be used)."""
        import torch

        try:
            import torch_npu
        except ModuleNotFoundError as exc:
            if exc.name != "torch_npu":
                return None, f"import torch_npu failed: {exc}"
            return None, (
                "torch_npu is not installed: install torch-npu with the torch and CANN of one "
                "compatibility set (hw_adapters/swift-ascend/README.md)"
            )
        except (ImportError, OSError, RuntimeError) as exc:
            return None, f"import torch_npu failed ({exc}); is CANN's environment loaded? ({CANN_ENV})"
        npu_version = str(getattr(torch_npu, "__version__", ""))
        if npu_version and release(npu_version) != release(torch.__version__):
            return None, (
                f"torch-npu {npu_version} is built for torch {'.'.join(map(str, release(npu_version)))}, "
                f"but this torch is {torch.__version__}: install the pair of one compatibility set (README)"
            )
        if not hasattr(torch, "npu"):
            return None, "torch_npu imported but registered no torch.npu (a broken torch-npu install)"
        return torch_npu, ""

    def is_available(self) -> bool:
        module, _ = self._torch_npu()
        if module is None:
            return False
        import torch

        try:
            return bool(torch.npu.is_available())
        except RuntimeError:  # no driver: torch_npu raises instead of answering False
            return False

    def unavailable_reason(self) -> str:
        module, why = self._torch_npu()
        if module is None:
            return why
        return (
            "torch.npu.is_available() is False: no Ascend NPU visible (check ASCEND_RT_VISIBLE_DEVICES, "
            f"`npu-smi info` for the driver, and {CANN_ENV})"
        )

    def device_count(self) -> int:
        import torch

        return int(torch.npu.device_count())

    def supported_dtypes(self) -> list[str]:
        import torch

        # Atlas 800T A2 (910B) computes bf16; the first 910 and inference cards do not.
        if torch.npu.is_bf16_supported():
            return ["bfloat16", "float16", "float32"]
        return ["float16", "float32"]

    def support(self) -> RuntimeSupport:
        import torch

        chip = str(torch.npu.get_device_name(0))
        if importlib.util.find_spec("vllm_ascend") is None:
            engines = {
                "vllm": "vLLM runs on Ascend only through the vllm-ascend platform plugin, which is not "
                "installed: install vllm and vllm-ascend of one compatibility set (hw_adapters/swift-ascend/README.md)"
            }
        else:
            engines = {}
        return RuntimeSupport(
            dtypes=tuple(self.supported_dtypes()),
            dtype_notes={"bfloat16": f"this NPU ({chip}) does not compute bf16 (the Atlas A2 series does)"},
            quantized_training=Feature.no(
                "bitsandbytes ships no Ascend NPU kernels (its backends are CUDA/HIP, XPU, HPU, MPS and CPU; "
                "QLoRA runs on NPU fail inside bitsandbytes' matmul, LLaMA-Factory#6452), so QLoRA is refused "
                "on NPU: train LoRA in bfloat16 instead"
            ),
            flash_attention=Feature.yes("torch_npu's npu_fusion_attention, which transformers uses on NPU"),
            fused_optimizers=Feature.no(
                "torch's fused AdamW on NPU depends on the torch-npu and CANN release (ms-swift#7327): "
                "plain AdamW is used"
            ),
            distributed=Feature.yes("hccl"),
            engines=engines,
        )

    def trainer_arguments(self, dtype_name: str) -> dict[str, Any]:
        """Mixed precision as on any accelerator, plain AdamW, and DDP without the unused-parameter
        search, which multi-card NPU runs need off (the issue's anchor users hit it with hccl)."""
        return {**super().trainer_arguments(dtype_name), "ddp_find_unused_parameters": False}

    def memory_stats(self, index: int = 0) -> dict[str, int]:
        import torch

        return allocator_memory_stats(torch.npu, index)

    def empty_cache(self) -> None:
        import torch

        torch.npu.empty_cache()

    def configure(self) -> None:
        import os

        import torch

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        if self.is_available() and local_rank < torch.npu.device_count():
            torch.npu.set_device(local_rank)
