"""Building Swift's own CPU kernels (small C files beside their Python modules) on first use.

Why build at run time rather than ship wheels: the kernels are a few hundred lines of plain C
with GCC vector extensions, compiled for this CPU (`-march=native`) by the system's compiler
(`$CC`, else `cc`), and anything without one keeps the torch path the kernel replaces. Each
library goes to `$SWIFT_CACHE/kernels/` (default `~/.cache/swift/kernels/`) under a name hashing
the source, the flags, the compiler and this CPU's feature flags; it is written to a temporary
file and renamed, so a half-built library never looks finished and concurrent ranks do not
clash (no lock to go stale). `SWIFT_CPU_KERNELS=0` switches every kernel off.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

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


def enabled() -> bool:
    return os.environ.get("SWIFT_CPU_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")


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


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc") or shutil.which("clang")


def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def library_path(cc: str, source: Path) -> Path:
    key = "\n".join(
        [source.read_text(), " ".join(FLAGS), _compiler_version(cc), _cpu_flags(), platform.machine()]
    )
    return cache_dir() / f"{source.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def build(cc: str, source: Path, target: Path) -> bool:
    """Compile to a temporary file next to `target`, then rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as err:  # a cache directory we cannot write: no kernels, the torch path
        logger.debug("no place to build %s: %s", source.name, err)
        return False
    try:
        # OpenMP first (it shares torch's libgomp: same soname); without it the kernels run on one thread.
        for extra in (["-fopenmp"], []):
            cmd = [cc, *FLAGS, *extra, "-o", tmp, str(source)]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                os.replace(tmp, target)
                return True
            logger.debug("building %s failed: %s\n%s", source.name, " ".join(cmd), done.stderr[-2000:])
        return False
    except (OSError, subprocess.SubprocessError) as err:
        logger.debug("building %s failed: %s", source.name, err)
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_library(source: Path) -> ctypes.CDLL | None:
    """The library built from `source` (building it if needed), or None where it cannot be had."""
    if not enabled():
        return None
    cc = compiler()
    if cc is None:
        logger.debug("no C compiler: %s is not used", source.name)
        return None
    target = library_path(cc, source)
    if not target.exists() and not build(cc, source, target):
        return None
    try:
        return ctypes.CDLL(str(target))
    except OSError as err:
        logger.debug("loading %s failed: %s", target, err)
        return None
