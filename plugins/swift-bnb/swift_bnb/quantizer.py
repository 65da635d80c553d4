"""The bitsandbytes load-time quantizer: 4-bit NF4/FP4 (QLoRA) or 8-bit int8.

Imported only when `--quant_method bnb` is selected, so torch and transformers are imported
here freely; bitsandbytes itself is imported by transformers while the model loads.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from swift_bnb.options import BnbOptions
from swift_core.config.options import options_for
from swift_core.errors import SwiftError
from swift_core.quantizers.base import ExportJob, ExportResult, Quantizer, library_versions

BITS = (4, 8)
QUANT_TYPES = ("nf4", "fp4")

logger = logging.getLogger(__name__)


def _torch_dtype(dtype: Any) -> Any:
    """`torch.bfloat16`, `"bfloat16"` or `None` (float32) as a torch dtype."""
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise SwiftError(f"bnb: unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        return value
    return dtype


class BnbQuantizer(Quantizer):
    name = "bnb"

    def check(self, args: Any) -> None:
        bits = getattr(args, "quant_bits", None)
        if bits not in BITS:
            raise SwiftError(
                f"--quant_method bnb needs --quant_bits 4 or 8 (allowed: {', '.join(map(str, BITS))}), "
                f"got {bits!r}"
            )
        quant_type = options_for(args, BnbOptions).bnb_4bit_quant_type
        if bits == 4 and quant_type not in QUANT_TYPES:
            raise SwiftError(
                f"--bnb_4bit_quant_type must be one of {', '.join(QUANT_TYPES)}, got {quant_type!r}"
            )

    @staticmethod
    def _config(bits: int, options: BnbOptions, dtype: Any) -> Any:
        from transformers import BitsAndBytesConfig

        if bits == 4:
            return BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=options.bnb_4bit_quant_type,
                bnb_4bit_use_double_quant=bool(options.bnb_4bit_use_double_quant),
                bnb_4bit_compute_dtype=_torch_dtype(dtype),
            )
        return BitsAndBytesConfig(load_in_8bit=True)

    def load_kwargs(self, args: Any, dtype: Any, runtime: Any = None) -> dict[str, Any]:
        self.check(args)
        config = self._config(args.quant_bits, options_for(args, BnbOptions), dtype)
        return {"quantization_config": config, "device_map": self._device_map(runtime)}

    @staticmethod
    def _device_map(runtime: Any) -> dict[str, Any]:
        """Where bitsandbytes quantizes the weights (it does so while they load): the runtime's
        device for this process, so `--device cpu` on a GPU machine stays on the CPU and each
        torchrun worker quantizes onto its own device, not all onto the first one."""
        if runtime is None:
            return {"": "cpu"}
        local_rank = (
            int(os.environ.get("LOCAL_RANK", "0") or 0) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
        )
        return {"": str(runtime.device(local_rank))}

    def export(self, job: ExportJob) -> ExportResult:
        """A bitsandbytes checkpoint: the weights quantized while they load, saved as they are in
        memory (transformers writes the 4-bit/8-bit tensors and their quantization_config), so it
        reloads in transformers and in vLLM without quantizing again."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = job.options if isinstance(job.options, BnbOptions) else BnbOptions()
        bits = job.bits or 4
        dtype = job.torch_dtype or "float32"
        device_map = self._device_map(job.runtime)
        job.log(f"loading {job.model_dir} with {bits}-bit bitsandbytes weights on {device_map['']}")
        model = AutoModelForCausalLM.from_pretrained(
            job.model_dir,
            quantization_config=self._config(bits, options, dtype),
            dtype=_torch_dtype(dtype),
            device_map=device_map,
        )
        model.save_pretrained(job.output_dir)
        AutoTokenizer.from_pretrained(job.model_dir).save_pretrained(job.output_dir)
        return ExportResult(
            format="bitsandbytes",
            scheme=options.bnb_4bit_quant_type if bits == 4 else "int8",
            bits=bits,
            group_size=64 if bits == 4 else None,  # bitsandbytes' 4-bit block size
            ignored_modules=list(getattr(model, "_keep_in_fp32_modules", None) or []) or ["lm_head"],
            weight_files=sorted(p.name for p in job.output_dir.glob("*.safetensors")),
            library_versions=library_versions(("bitsandbytes", "transformers", "torch")),
            loads_in=["transformers", "vllm"],
        )

    def prepare_for_training(self, model: Any, args: Any) -> Any:
        from peft import prepare_model_for_kbit_training

        unpacked = _unpack_cpu_inference_weights(model)
        if unpacked:
            logger.warning(
                "bnb: %d 4-bit layers had been repacked for CPU inference; restored the training layout "
                "(the 4-bit scales are re-quantized, so outputs move slightly: load afresh to avoid it)",
                unpacked,
            )
        # peft's default is use_gradient_checkpointing=True: it would switch checkpointing on
        # (a slower backward) even when the user did not ask for it.
        checkpointing = bool(getattr(args, "gradient_checkpointing", False))
        return prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        )


def _unpack_cpu_inference_weights(model: Any) -> int:
    """Keep 4-bit weights in the layout the training path understands; return how many changed.

    On a CPU with AVX512-BF16, bitsandbytes' `Linear4bit.forward` repacks its weight in place
    into an inference-only layout on the first eval-mode forward without gradients (a
    `generate`, an evaluation loop). From then on every forward takes the inference kernel and
    training fails with "a view of a leaf Variable that requires grad is being used in an
    in-place operation". So: undo a repacking that already happened and switch it off for the
    rest of this model's life (the trainer's evaluations run in eval mode under no_grad).
    """
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:  # bitsandbytes missing: nothing of it in the model either
        return 0
    unpacked = 0
    for module in model.modules():
        if not isinstance(module, Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False
        state = getattr(module.weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            try:
                from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse
            except ImportError as exc:
                raise SwiftError(
                    "this 4-bit model already ran inference on the CPU and bitsandbytes cannot "
                    "undo its inference layout; load the model again and train before any inference"
                ) from exc
            module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                module.weight.data, state
            )
            unpacked += 1
    return unpacked
