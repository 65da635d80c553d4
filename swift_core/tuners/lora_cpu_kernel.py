"""LoRA's low-rank half with its input dropout as CPU kernels of our own, built on first use.

Why our own: on the CPU the adapters' dropout cost torch a random draw per element, a compare, a
masked copy of every adapted projection's input (kept for the backward) and a masked gradient,
and the rank-r products are too skinny for MKL to reach the matmul peak; together ~15% of a LoRA
step of the issue-20 work (profiled). No library fuses them on the CPU (Liger and unsloth are
GPU kernels). `lora_cpu_kernel.c` reads the input once in the forward, draws the mask from a
counter-based hash (seeded from torch's generator, so runs are reproducible under a seed and a
resumed run draws what the uninterrupted one drew), keeps one bit per element instead of a
masked fp32 copy, and computes the backward from the input and those bits.

The C file is compiled with the system's C compiler (`$CC`, else `cc`) into
`$SWIFT_CACHE/kernels/` (default `~/.cache/swift/kernels/`), under a name hashing the source,
the flags, the compiler and this CPU's feature flags; written to a temporary file and renamed,
so a half-built library never looks finished and concurrent ranks do not clash. Where there is
no compiler, the build fails or `SWIFT_CPU_KERNELS=0` is set, `load()` returns None and the fused
LoRA layer keeps its torch path (same formula, torch's random draws).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("lora_cpu_kernel.c")
ABI = 1
# No -ffast-math: linking a shared library with it sets flush-to-zero for the whole process.
FLAGS = [
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-ffp-contract=fast",
    "-shared",
    "-fPIC",
]
LANES = 65536  # the mask's resolution: p rounded to 1/65,536


def cache_dir() -> Path:
    base = os.environ.get("SWIFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "swift")
    return Path(base) / "kernels"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc") or shutil.which("clang")


def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _build(cc: str, target: Path) -> bool:
    """Compile to a temporary file next to `target`, then rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as err:  # a cache directory we cannot write: no kernels, the torch path
        logger.debug("no place to build the LoRA CPU kernel: %s", err)
        return False
    try:
        # OpenMP first (it shares torch's libgomp: same soname); without it the kernels run on one thread.
        for extra in (["-fopenmp"], []):
            cmd = [cc, *FLAGS, *extra, "-o", tmp, str(SOURCE)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                os.replace(tmp, target)
                return True
            logger.debug("building the LoRA CPU kernel failed: %s\n%s", " ".join(cmd), done.stderr[-2000:])
        return False
    except (OSError, subprocess.SubprocessError) as err:
        logger.debug("building the LoRA CPU kernel failed: %s", err)
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def library_path(cc: str) -> Path:
    key = "\n".join(
        [SOURCE.read_text(), " ".join(FLAGS), _compiler_version(cc), _cpu_flags(), platform.machine()]
    )
    return cache_dir() / f"lora_cpu_kernel-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, u64, u32, f32, i32 = (
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_uint64,
        ctypes.c_uint32,
        ctypes.c_float,
        ctypes.c_int,
    )
    lib.swift_lora_kernel_abi.restype = ctypes.c_int
    lib.swift_lora_down.argtypes = [p, p, p, p, i64, i64, i64, u64, u32, f32, i32]
    lib.swift_lora_grad_a.argtypes = [p, p, p, p, i64, i64, i64, i32]
    lib.swift_lora_grad_x_add.argtypes = [p, p, p, p, i64, i64, i64, i32]
    lib.swift_lora_unpack_keep.argtypes = [p, p, i64, i64]
    for name in ("swift_lora_down", "swift_lora_grad_a", "swift_lora_grad_x_add", "swift_lora_unpack_keep"):
        getattr(lib, name).restype = None
    return lib


@functools.cache
def load() -> ctypes.CDLL | None:
    """The built kernels, or None where they cannot be had (the caller keeps its torch path)."""
    if os.environ.get("SWIFT_CPU_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    cc = _compiler()
    if cc is None:
        logger.debug("no C compiler: the LoRA CPU kernel is not used")
        return None
    target = library_path(cc)
    if not target.exists() and not _build(cc, target):
        return None
    try:
        lib = _bind(ctypes.CDLL(str(target)))
    except OSError as err:
        logger.debug("loading %s failed: %s", target, err)
        return None
    return lib if lib.swift_lora_kernel_abi() == ABI else None


def mask_cut(p: float) -> int:
    """The 16-bit threshold under which an element is dropped (p rounded to 1/65,536)."""
    return round(p * LANES)


def keep_scale(cut: int) -> float:
    return 1.0 / (1.0 - cut / LANES) if cut < LANES else 0.0


def draw_seed() -> int:
    """A 64-bit seed from torch's default generator: reproducible under `torch.manual_seed`.

    Signed (an int64), as it passes through an autograd Function's arguments: the profiler's
    `record_shapes` casts those to C++ types and fails on a Python int beyond int64."""
    return int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64))


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def down(lib: Any, x: torch.Tensor, lora_a: torch.Tensor, seed: int, cut: int, scale: float):
    """(z, bits): z = scale * (x with the mask's dropped elements zeroed) @ lora_a.T; x (T x n) contiguous fp32."""
    rows, n = x.shape
    r = lora_a.shape[0]
    z = torch.empty(rows, r, dtype=x.dtype)
    bits = torch.empty(rows, (n + 7) // 8, dtype=torch.uint8)
    if rows:
        lib.swift_lora_down(
            _ptr(x),
            _ptr(lora_a),
            _ptr(z),
            _ptr(bits),
            rows,
            n,
            r,
            seed & (2**64 - 1),
            cut,
            scale,
            torch.get_num_threads(),
        )
    return z, bits


def grad_a(lib: Any, gz: torch.Tensor, x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """gz.T @ (x masked by bits): the gradient of lora_A (r x n)."""
    rows, n = x.shape
    r = gz.shape[1]
    out = torch.empty(r, n, dtype=x.dtype)
    lib.swift_lora_grad_a(_ptr(gz), _ptr(x), _ptr(bits), _ptr(out), rows, n, r, torch.get_num_threads())
    return out


def grad_x_add_(
    lib: Any, gx: torch.Tensor, gz: torch.Tensor, lora_a: torch.Tensor, bits: torch.Tensor
) -> None:
    """gx += (gz @ lora_a) masked by bits, in place."""
    rows, n = gx.shape
    if rows:
        lib.swift_lora_grad_x_add(
            _ptr(gz), _ptr(lora_a), _ptr(bits), _ptr(gx), rows, n, gz.shape[1], torch.get_num_threads()
        )


def keep_mask(lib: Any, bits: torch.Tensor, n: int) -> torch.Tensor:
    """The mask the bits hold, as bool (True = kept), (T x n): for tests and references."""
    out = torch.empty(bits.shape[0], n, dtype=torch.uint8)
    lib.swift_lora_unpack_keep(_ptr(bits), _ptr(out), bits.shape[0], n)
    return out.bool()
