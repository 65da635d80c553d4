"""GPU smoke check of the swift-cuda runtime: run on a machine with an NVIDIA GPU.

python bench/gpu/cuda_runtime_smoke.py
"""

from swift_core.runtimes.selection import select_runtime

runtime = select_runtime("auto")
assert runtime.name == "cuda", f"expected the cuda runtime, got {runtime.name}"
print(runtime.describe())
import torch  # noqa: E402

x = torch.randn(256, 256, device=runtime.device(0), dtype=getattr(torch, runtime.default_dtype()))
print("matmul ok:", float((x @ x).float().abs().mean()))
