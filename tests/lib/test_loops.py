"""One thing per event loop."""

from __future__ import annotations

import asyncio
import gc

from lib.loops import PerLoop


def test_each_loop_gets_its_own_and_keeps_it_until_popped():
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    per_loop: PerLoop[object] = PerLoop(make)

    async def twice() -> tuple[object, object]:
        return per_loop.get(), per_loop.get()

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] is first[1] and second[0] is second[1]
    assert first[0] is not second[0] and len(made) == 2

    async def popped() -> tuple[object, object | None, object]:
        kept = per_loop.get()
        return kept, per_loop.pop(), per_loop.get()

    kept, gone, fresh = asyncio.run(popped())
    assert gone is kept and fresh is not kept


def test_a_finished_loop_and_its_value_are_forgotten():
    per_loop: PerLoop[list[int]] = PerLoop(list)

    async def use() -> None:
        per_loop.get()

    for _ in range(3):
        asyncio.run(use())
    gc.collect()
    assert len(per_loop._values) == 0
