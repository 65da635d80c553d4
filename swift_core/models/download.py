"""Download a model from the Hugging Face Hub or ModelScope.

`download_model` is what `swift download` runs and what pipelines call before loading weights.

Hugging Face (`hub="hf"`) goes through `huggingface_hub.snapshot_download`:

- the endpoint is read when the function is called (the `endpoint` argument, else `HF_ENDPOINT`, else
  https://huggingface.co) and passed explicitly, because huggingface_hub reads `HF_ENDPOINT` only once, at
  import; the cache folder likewise (`HF_HUB_CACHE`, `HF_HOME`);
- before anything else, offline mode (`HF_HUB_OFFLINE`) and a quick reachability check of the endpoint fail
  fast with a `SwiftError` that says what to do, instead of a traceback after a long wait;
- each file is written to a temporary `*.incomplete` file and renamed once complete, so a file under its
  final name is always whole; a connection dropped in the middle of a file is resumed with an HTTP
  `Range` request (huggingface_hub's `http_get`), and files finished by an earlier, interrupted run are
  not downloaded again;
- huggingface_hub's progress bars are shown (stderr); a one-line summary is printed at the end (stdout).

ModelScope (`hub="ms"`) goes through `modelscope.snapshot_download`, imported only when used.

Nothing heavy is imported at module level: huggingface_hub and modelscope are imported inside functions.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

HUBS = ("hf", "ms")
DEFAULT_ENDPOINT = "https://huggingface.co"
# Seconds allowed to the reachability check before a download starts (connect and first answer).
CHECK_TIMEOUT = 3.0

_TRUE = {"1", "on", "yes", "true", "y"}


def download_model(
    model_id: str,
    hub: str = "hf",
    revision: str | None = None,
    local_dir: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download `model_id` and return the folder holding its files.

    `hub` is "hf" (Hugging Face, or the mirror named by `endpoint`/`HF_ENDPOINT`) or "ms" (ModelScope).
    `revision` is a branch, tag or commit (default: the hub's default branch). With `local_dir` the files are
    written there; without, into the hub's cache (the returned path is the cached snapshot).
    Raises `SwiftError` for anything the user can fix: offline, unreachable endpoint, unknown model or
    revision, missing `modelscope` package.
    """
    if not model_id or not model_id.strip():
        raise SwiftError("a model id is required, e.g. --model Qwen/Qwen2.5-0.5B-Instruct")
    if hub not in HUBS:
        raise SwiftError(f"unknown hub {hub!r}; choose one of {', '.join(HUBS)}")
    start = time.monotonic()
    if hub == "hf":
        path = _download_hf(model_id, revision=revision, local_dir=local_dir, endpoint=endpoint)
    else:
        path = _download_ms(model_id, revision=revision, local_dir=local_dir)
    seconds = time.monotonic() - start
    count, size = _folder_stats(path)
    print(
        f"Downloaded {model_id}: {count} files, {format_size(size)} in {seconds:.1f}s -> {path}",
        flush=True,
    )
    return path


# -- Hugging Face ---------------------------------------------------------------------------------------


def hf_endpoint(endpoint: str | None = None) -> str:
    """The endpoint to use: the argument, else `HF_ENDPOINT` as it is now, else huggingface.co."""
    value = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    return value.rstrip("/")


def hf_offline() -> bool:
    """Whether Hugging Face downloads are switched off (`HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`).

    Read from the environment now, and from huggingface_hub's own copy (read at its import), since
    huggingface_hub refuses every request when that copy says offline.
    """
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(key, "").strip().lower() in _TRUE:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _hf_cache_dir() -> str | None:
    """The hub cache folder from the environment as it is now (None: huggingface_hub's default)."""
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(key):
            return os.path.expanduser(os.path.expandvars(os.environ[key]))
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.path.expandvars(os.environ["HF_HOME"])), "hub")
    return None


def check_reachable(endpoint: str, timeout: float | None = None) -> None:
    """Raise `SwiftError` unless `endpoint` answers an HTTP request within `timeout` seconds (CHECK_TIMEOUT).

    Any HTTP answer counts, whatever its status: this only tells "no network" apart from the rest.
    Uses huggingface_hub's HTTP client (so proxies and a client factory set by the user apply); the request
    runs in a thread so that a slow name lookup cannot hold the caller past the deadline.
    """
    import httpx
    from huggingface_hub.utils import get_session

    timeout = CHECK_TIMEOUT if timeout is None else timeout
    outcome: dict[str, BaseException | None] = {}

    def probe() -> None:
        try:
            get_session().head(endpoint + "/", timeout=httpx.Timeout(timeout), follow_redirects=False)
            outcome["error"] = None
        except BaseException as exc:  # reported to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="swift-hub-check", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    if "error" not in outcome:
        reason = f"no answer within {timeout:g}s"
    elif outcome["error"] is None:
        return
    else:
        exc = outcome["error"]
        if isinstance(exc, httpx.TimeoutException):
            reason = f"no answer within {timeout:g}s"
        elif isinstance(exc, httpx.ProxyError):
            reason = f"proxy error ({exc})"
        elif isinstance(exc, httpx.ConnectError):
            reason = f"connection failed ({exc})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
    raise SwiftError(f"cannot reach {endpoint}: {reason}; check your network, or set HF_ENDPOINT to a mirror")


def _download_hf(model_id: str, *, revision: str | None, local_dir: str | None, endpoint: str | None) -> Path:
    url = hf_endpoint(endpoint)
    if hf_offline():
        raise SwiftError(
            f"cannot download {model_id!r}: Hugging Face offline mode is on (HF_HUB_OFFLINE); "
            "unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE) to download"
        )
    check_reachable(url)

    import huggingface_hub

    kwargs: dict[str, Any] = {"revision": revision, "endpoint": url}
    if local_dir is not None:
        kwargs["local_dir"] = local_dir
    cache_dir = _hf_cache_dir()
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    try:
        return Path(huggingface_hub.snapshot_download(model_id, **kwargs))
    except Exception as exc:
        error = _hf_error(exc, model_id=model_id, revision=revision, endpoint=url)
        if error is None:
            raise
        raise error from exc


def _hf_error(exc: Exception, *, model_id: str, revision: str | None, endpoint: str) -> SwiftError | None:
    """A `SwiftError` saying what went wrong in a huggingface_hub download, or None for a bug."""
    import httpx
    from huggingface_hub import errors

    where = f"on {endpoint}"
    rev = f" at revision {revision!r}" if revision else ""
    # snapshot_download reports a failed repo look-up as LocalEntryNotFoundError, the cause chained.
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in chain:
        if isinstance(item, errors.GatedRepoError):
            return SwiftError(
                f"model {model_id!r} is gated {where}: accept its terms on the model page and log in "
                "(huggingface-cli login, or set HF_TOKEN)"
            )
        if isinstance(item, errors.RevisionNotFoundError):
            return SwiftError(f"revision {revision!r} of model {model_id!r} was not found {where}")
        if isinstance(item, errors.RepositoryNotFoundError):
            return SwiftError(
                f"model {model_id!r} was not found {where}; check the id (or, for a private model, set HF_TOKEN)"
            )
        if isinstance(item, errors.RemoteEntryNotFoundError):
            return SwiftError(f"a file of model {model_id!r}{rev} is missing {where}: {_first_line(item)}")
        if isinstance(item, errors.HfHubHTTPError) and getattr(item, "response", None) is not None:
            status = item.response.status_code
            if status == 404:
                return SwiftError(f"model {model_id!r}{rev} was not found {where} (HTTP 404)")
            if status in (401, 403):
                return SwiftError(
                    f"access to model {model_id!r} was refused {where} (HTTP {status}); set HF_TOKEN if it is private"
                )
            return SwiftError(f"downloading {model_id!r} from {endpoint} failed: {_first_line(item)}")
        if isinstance(item, errors.OfflineModeIsEnabled):
            return SwiftError(
                f"cannot download {model_id!r}: Hugging Face offline mode is on (HF_HUB_OFFLINE); unset it to download"
            )
        if isinstance(item, httpx.TransportError):
            return SwiftError(
                f"cannot reach {endpoint} while downloading {model_id!r}: {item}; check your network, or set "
                "HF_ENDPOINT to a mirror, and run again (finished files are kept)"
            )
    if isinstance(exc, errors.HFValidationError):
        return SwiftError(f"invalid model id {model_id!r}: {_first_line(exc)}")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        return SwiftError(f"cannot download {model_id!r} from {endpoint}: {_first_line(exc)}")
    if isinstance(exc, OSError) and not isinstance(exc, (PermissionError, FileNotFoundError)):
        # e.g. "Consistency check failed: file should be of size ... but has size ..."
        return SwiftError(f"downloading {model_id!r} from {endpoint} failed: {_first_line(exc)}; run again")
    if isinstance(exc, OSError):
        return SwiftError(f"cannot write the files of {model_id!r}: {exc}")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


# -- ModelScope -----------------------------------------------------------------------------------------


def _download_ms(model_id: str, *, revision: str | None, local_dir: str | None) -> Path:
    try:
        import modelscope
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "modelscope":
            raise SwiftError(
                "downloading from ModelScope (--hub ms) needs the modelscope package: pip install modelscope"
            ) from None
        raise
    kwargs: dict[str, Any] = {}
    if revision is not None:
        kwargs["revision"] = revision
    if local_dir is not None:
        kwargs["local_dir"] = local_dir
    try:
        path = modelscope.snapshot_download(model_id, **kwargs)
    except (KeyboardInterrupt, SwiftError):
        raise
    except Exception as exc:  # modelscope raises its own, requests' and OS errors
        raise SwiftError(
            f"downloading {model_id!r} from ModelScope failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return Path(path)


# -- summary --------------------------------------------------------------------------------------------


def _folder_stats(path: Path) -> tuple[int, int]:
    """Number of files and their total size under `path`, leaving out huggingface_hub's `.cache` folder."""
    count = size = 0
    for root, dirs, files in os.walk(path):
        if Path(root) == path:
            dirs[:] = [d for d in dirs if d != ".cache"]
        for name in files:
            try:
                size += os.stat(os.path.join(root, name)).st_size  # follows the cache's symlinks to blobs
            except OSError:
                continue
            count += 1
    return count, size


def format_size(size: float) -> str:
    """`size` bytes for people: 512 B, 2.0 MB, 14.5 GB."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024 or unit == "TB":
            break
    return f"{size:.1f} {unit}"
