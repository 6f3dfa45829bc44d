"""Things a process keeps one of per asyncio event loop (connection pools, the usage writer):
made on first use in a loop, and forgotten with the loop."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One ``T`` per running event loop, made by ``make`` on first use.

    The loop asked about last is checked first, without building a weak reference: a worker
    process runs one loop, and this is asked on every gateway call."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._make()
        self._last = (weakref.ref(loop), value)
        return value

    def pop(self) -> T | None:
        """The running loop's ``T``, if it has one, forgotten (the next ``get`` makes anew)."""
        self._last = None
        return self._values.pop(asyncio.get_running_loop(), None)
