"""A local stand-in for the Hugging Face Hub file API, for download tests (Swift's and plugins').

Standard library only (no huggingface_hub needed to run the server), so importing it is cheap.

It answers what `huggingface_hub.snapshot_download` / `hf_hub_download` (huggingface_hub 1.x) ask for:

- `GET /api/models/{repo_id}/revision/{revision}` -> model info (`id`, `sha`, `siblings`), read by
  `HfApi.model_info` (hf_api.py), which `snapshot_download` calls through `repo_info` to resolve a
  branch or tag to a commit;
- `GET /api/models/{repo_id}/tree/{commit}` -> the file listing (`type`, `path`, `size`, `oid`, `lfs`),
  read by `HfApi.list_repo_tree` (hf_api.py) since huggingface_hub 1.x;
- `HEAD /{repo_id}/resolve/{revision}/{filename}` -> `ETag`, `X-Repo-Commit`, `Content-Length` (and
  `X-Linked-Etag`/`X-Linked-Size` for LFS files), read by `get_hf_file_metadata` (file_download.py);
- `GET /{repo_id}/resolve/{revision}/{filename}` with an optional `Range: bytes=START-[END]` -> 200 or 206
  with `Content-Range`, streamed by `http_get` (file_download.py);
- `HEAD /` and `GET /` -> 200 (a reachability check).

Errors carry the `X-Error-Code` header the real Hub sends (`RepoNotFound`, `RevisionNotFound`,
`EntryNotFound`), which `hf_raise_for_status` (utils/_http.py) turns into typed exceptions.

Every request is recorded (method, path, Range header). Faults can be queued per file, each used by one
GET: `"cut"` sends the headers of the full answer but only `at` bytes of the body, then closes the
connection (an interrupted download); `"status"` answers with an HTTP error status instead.

The server is bound to 127.0.0.1 on a free port and runs in a daemon thread; use it as a context manager.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_WRITE_BLOCK = 64 * 1024

_MODEL_INFO = re.compile(r"^/api/models/(?P<repo>.+)/revision/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>.+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class Fault:
    kind: str  # "cut" or "status"
    at: int = 0
    status: int = 500


@dataclass
class _Repo:
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {filename: content}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(filename: str) -> bool:
    return filename.endswith(LFS_SUFFIXES)


def etag_of(filename: str, data: bytes) -> str:
    """The ETag the Hub gives a file: sha256 for LFS files, the git blob sha1 otherwise."""
    return hashlib.sha256(data).hexdigest() if is_lfs(filename) else git_blob_sha1(data)


class FakeHub:
    """A tiny Hub: `add_repo`, then point `endpoint=hub.url` (or HF_ENDPOINT) at it."""

    def __init__(self) -> None:
        self._repos: dict[str, _Repo] = {}
        self._faults: dict[tuple[str, str], list[Fault]] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # False: errors without `X-Error-Code`, as some mirrors answer (a bare 404)
        self.error_codes = True

    # -- set-up -----------------------------------------------------------------------------------------
    def add_repo(
        self, repo_id: str, files: dict[str, bytes], *, revision: str = "main", sha: str | None = None
    ) -> str:
        """Add a commit holding `files`, reachable as `revision` and as its sha; returns the sha."""
        if sha is None:
            digest = hashlib.sha1(repo_id.encode() + revision.encode())
            for name in sorted(files):
                digest.update(name.encode() + b"\0" + files[name])
            sha = digest.hexdigest()
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo())
            repo.commits[sha] = dict(files)
            repo.refs[revision] = sha
        return sha

    def fail_next(
        self, repo_id: str, filename: str, kind: str = "cut", *, at: int = 0, status: int = 500
    ) -> None:
        """Queue a fault for the next GET of this file (`cut` after `at` bytes, or an HTTP `status`)."""
        if kind not in ("cut", "status"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.setdefault((repo_id, filename), []).append(Fault(kind, at=at, status=status))

    def _take_fault(self, repo_id: str, filename: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get((repo_id, filename))
            return queue.pop(0) if queue else None

    # -- introspection ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def gets(self, filename: str) -> list[Request]:
        """The GETs of one file (any repo, any revision)."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and "/resolve/" in r.path and r.path.endswith(f"/{filename}")
        ]

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _resolve(self, repo_id: str, revision: str) -> tuple[_Repo | None, str | None]:
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                return None, None
            if revision in repo.commits:
                return repo, revision
            return repo, repo.refs.get(revision)

    # -- server -----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake hub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection is dropped after this many seconds
    fake_hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- helpers ----------------------------------------------------------------------------------------
    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, head: bool = False
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, *, head: bool = False) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"}, head=head)

    def _error(
        self, status: int, code: str, message: str, *, commit: str | None = None, head: bool = False
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if self.fake_hub.error_codes:
            headers.update({"X-Error-Code": code, "X-Error-Message": message})
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

    # -- verbs ------------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._guarded(head=True)

    def do_GET(self) -> None:
        self._guarded(head=False)

    def _guarded(self, *, head: bool) -> None:
        try:
            self._handle(head=head)
        except (BrokenPipeError, ConnectionResetError):  # the client went away mid-answer
            self.close_connection = True

    def _handle(self, *, head: bool) -> None:
        hub = self.fake_hub
        raw_path = urlsplit(self.path).path
        hub._record(Request("HEAD" if head else "GET", raw_path, self.headers.get("Range")))

        if raw_path in ("", "/"):
            self._send(200, b"fake hub", {"Content-Type": "text/plain"}, head=head)
            return
        if m := _MODEL_INFO.match(raw_path):
            self._model_info(unquote(m["repo"]), unquote(m["rev"]), head=head)
            return
        if m := _TREE.match(raw_path):
            self._tree(unquote(m["repo"]), unquote(m["rev"]), head=head)
            return
        if m := _RESOLVE.match(raw_path):
            self._file(unquote(m["repo"]), unquote(m["rev"]), unquote(m["file"]), head=head)
            return
        self._error(404, "NotFound", f"no route for {raw_path}", head=head)

    def _lookup(self, repo_id: str, revision: str, *, head: bool) -> tuple[str, dict[str, bytes]] | None:
        repo, sha = self.fake_hub._resolve(repo_id, revision)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        if sha is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head=head)
            return None
        return sha, repo.commits[sha]

    def _model_info(self, repo_id: str, revision: str, *, head: bool) -> None:
        found = self._lookup(repo_id, revision, head=head)
        if found is None:
            return
        sha, files = found
        info = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": sha,
            "private": False,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": name} for name in sorted(files)],
        }
        self._json(200, info, head=head)

    def _tree(self, repo_id: str, revision: str, *, head: bool) -> None:
        found = self._lookup(repo_id, revision, head=head)
        if found is None:
            return
        _, files = found
        entries = []
        for name in sorted(files):
            data = files[name]
            entry: dict[str, Any] = {
                "type": "file",
                "path": name,
                "size": len(data),
                "oid": git_blob_sha1(data),
            }
            if is_lfs(name):
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            entries.append(entry)
        self._json(200, entries, head=head)

    def _file(self, repo_id: str, revision: str, filename: str, *, head: bool) -> None:
        found = self._lookup(repo_id, revision, head=head)
        if found is None:
            return
        sha, files = found
        if filename not in files:
            self._error(404, "EntryNotFound", f"{filename} does not exist", commit=sha, head=head)
            return
        data = files[filename]
        etag = etag_of(filename, data)
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{etag}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
        }
        if is_lfs(filename):
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        if head:
            self._send(200, data, headers, head=True)
            return

        fault = self.fake_hub._take_fault(repo_id, filename)
        if fault is not None and fault.kind == "status":
            self._error(fault.status, "FakeFault", "injected failure", head=False)
            return

        status, start, end = 200, 0, len(data) - 1
        range_header = self.headers.get("Range")
        if range_header:
            m = _RANGE.match(range_header.strip())
            if m is None or int(m["start"]) >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            start = int(m["start"])
            end = min(int(m["end"]), len(data) - 1) if m["end"] else len(data) - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = data[start : end + 1]

        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault is not None and fault.kind == "cut":
            # Send part of the body, then drop the connection: the client sees a short read.
            self._write(body[: max(0, min(fault.at, len(body)))])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(body)

    def _write(self, body: bytes) -> None:
        for offset in range(0, len(body), _WRITE_BLOCK):
            self.wfile.write(body[offset : offset + _WRITE_BLOCK])
