"""The one bridge from a blocking iterator (the answer loop, in a thread) to an async consumer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Callable, Iterator

__all__ = ["aiter_in_thread"]


async def aiter_in_thread(make: Callable[[], Iterator[Any]], cancel: threading.Event) -> AsyncIterator[Any]:
    """Run the iterator `make()` in a thread of its own and yield its items here. Leaving early
    (a client gone, a consumer that stopped) sets `cancel`.

    One thread for the whole iteration, because the agent holds its lock (an RLock, owned by a
    thread) from the first event to the last. The one bridge from the token loop's thread to
    asyncio: Agent.astream, the HTTP server and the LangChain adapter all use it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed before the iteration ended: nobody is listening
            cancel.set()

    def work() -> None:
        try:
            for item in make():
                put(item)
        except BaseException as exc:  # re-raised in the consumer's task
            put(exc)
        finally:
            put(done)

    threading.Thread(target=work, name="tooltoken-answer", daemon=True).start()
    try:
        while (item := await queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set()
