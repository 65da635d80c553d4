"""One event loop for an inference library, callers on any loop.

Asynchronous engines bind themselves to the event loop they first run on (LMDeploy's
`AsyncEngine` keeps an `internal_thread` loop; SGLang's `TokenizerManager` binds its receive loop
to the first request's), but Swift's callers come from many loops: a server's, or the fresh one
`asyncio.run` makes for each `generate_batch`. `LoopBridge` runs every request on the library's
loop and hands what it produces to the caller's loop; cancelling the caller cancels the work on the
library's loop, where the engine's own cancellation path runs. Engine plugins share it from here
because plugins cannot import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from swift_core.errors import SwiftError

Emit = Callable[[Any], None]


class _Failure:
    """An exception raised on the library's loop, carried to the caller's."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


class LoopBridge:
    """Runs coroutines on `loop` (or on a loop thread of its own when `loop` is None)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, name: str = "swift-engine-loop"):
        self._thread: threading.Thread | None = None
        if loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
            self._thread.start()
        self.loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()  # requests in flight; touched on `loop` only
        self.closed = False

    def run(self, coro: Awaitable[Any], timeout: float | None = None) -> Any:
        """Run one coroutine on the loop from a thread that is not the loop's; wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    async def stream(self, produce: Callable[[Emit], Awaitable[None]]) -> AsyncIterator[Any]:
        """What `produce(emit)` emits on the library's loop, delivered on the caller's loop.

        Closing this generator (or cancelling its reader) cancels `produce`; an exception raised
        by `produce` is raised here.
        """
        if self.closed:
            raise SwiftError("the engine is shut down")
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody is listening
                caller.call_soon_threadsafe(queue.put_nowait, item)

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await produce(emit)
            except asyncio.CancelledError:
                # The reader left (it ignores this), or the engine is closing (the reader must hear).
                emit(_Failure(SwiftError("the request was cancelled: the engine is shutting down")))
                raise
            except BaseException as exc:
                emit(_Failure(exc))
                return
            finally:
                self._tasks.discard(task)
            emit(_DONE)

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            if not future.done():
                future.cancel()  # cancels `produce` on the library's loop

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every request in flight and wait (up to `timeout` s) for their clean-up (the
        library's abort calls) to run. Call from a thread that is not the loop's."""

        async def cancel() -> None:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        if self.loop.is_running() and not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self.run(cancel(), timeout=timeout + 5)

    def close(self) -> None:
        """Stop the loop thread this bridge started (a library's own loop is the library's to stop)."""
        self.closed = True
        if self._thread is None:
            return
        loop, thread = self.loop, self._thread
        self._thread = None
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        if not thread.is_alive() and not loop.is_running():
            loop.close()
