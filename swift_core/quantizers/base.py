"""The quantizer interface.

Load-time quantizers (bitsandbytes for QLoRA) hand `from_pretrained` its quantization config
and prepare the loaded model for training; export-time quantizers write a quantized checkpoint.
The pipeline asks the descriptor's `load_time`/`export_time` flags, never the name.
"""

from __future__ import annotations

from typing import Any


class Quantizer:
    name: str = ""

    def check(self, args: Any) -> None:
        """Refuse bad settings (e.g. unsupported bits) before any model is loaded."""

    def load_kwargs(self, args: Any, dtype: Any) -> dict[str, Any]:
        """Extra keyword arguments for `AutoModelForCausalLM.from_pretrained`."""
        raise NotImplementedError(f"quantizer {self.name!r} cannot quantize at load time")

    def prepare_for_training(self, model: Any, args: Any) -> Any:
        """Make a quantized model trainable (casts, input gradients)."""
        return model

    def export(self, model_dir: str, output_dir: str, args: Any) -> None:
        """Write a quantized copy of the model in `model_dir` to `output_dir`."""
        raise NotImplementedError(f"quantizer {self.name!r} cannot export")
