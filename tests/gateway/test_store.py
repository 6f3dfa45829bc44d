"""The gateway's lookup: calls that arrive while the lookups in flight are busy share the next
query, and each still gets its own, fresh row."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.store import PostgresStore, SharedLookups, store
from tokens.services import token_create

from .conftest import run


class Recorder:
    """A stand-in query: answers each parameter tuple with itself, after a moment."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[tuple]] = []
        self.fail_first = fail_first

    async def __call__(self, calls: list[tuple]) -> list[tuple]:
        self.batches.append(list(calls))
        await asyncio.sleep(0.01)
        if self.fail_first and len(self.batches) == 1:
            raise ConnectionError("the database went away")
        return [("row", *call) for call in calls]


def test_a_call_alone_is_looked_up_at_once_on_its_own():
    recorder = Recorder()

    async def main():
        lookups = SharedLookups(recorder, in_flight=2)
        return [await lookups.get((i,)) for i in range(3)]

    assert asyncio.run(main()) == [("row", 0), ("row", 1), ("row", 2)]
    assert recorder.batches == [[(0,)], [(1,)], [(2,)]]


def test_calls_that_arrive_while_the_slots_are_busy_share_a_query_and_get_their_own_rows():
    recorder = Recorder()

    async def main():
        lookups = SharedLookups(recorder, in_flight=2)
        return await asyncio.gather(*(lookups.get((i,)) for i in range(50)))

    results = asyncio.run(main())
    assert results == [("row", i) for i in range(50)]
    assert len(recorder.batches) == 3  # two at once, then everyone who waited
    assert sorted(call for batch in recorder.batches for call in batch) == [(i,) for i in range(50)]


def test_a_failed_query_fails_the_calls_it_answered_and_the_next_ones_still_work():
    recorder = Recorder(fail_first=True)

    async def main():
        lookups = SharedLookups(recorder, in_flight=1)
        first = await asyncio.gather(*(lookups.get((i,)) for i in range(5)), return_exceptions=True)
        return first, await lookups.get((9,))

    first, later = asyncio.run(main())
    assert isinstance(first[0], ConnectionError)  # the one that ran alone and failed
    assert first[1:] == [("row", i) for i in range(1, 5)]  # waited, then shared a query
    assert later == ("row", 9)


def test_a_caller_that_gives_up_does_not_disturb_the_others():
    recorder = Recorder()

    async def main():
        lookups = SharedLookups(recorder, in_flight=1)
        tasks = [asyncio.ensure_future(lookups.get((i,))) for i in range(6)]
        await asyncio.sleep(0)
        tasks[3].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [("row", i) for i in (0, 1, 2, 4, 5)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_many_calls_at_once_each_get_their_own_row(deployment, other_developer):
    """Tokens of two people, models known and unknown, tokens that don't exist: 60 calls at
    once against the real query, answered by far fewer queries."""
    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    tokens = {
        deployment.token.secret: deployment.developer.username,
        other.secret: other_developer.username,
    }
    cases = []
    for i in range(60):
        secret = list(tokens)[i % 2]
        lookup_id = secret.split("_")[1] if i % 5 else "nosuchid"
        model = "fake-gpt" if i % 3 else "not-a-model"
        cases.append((lookup_id, model, tokens[secret]))

    async def main():
        current = store()
        assert isinstance(current, PostgresStore)
        queries = 0
        run_batch = current._rows_by_lookup_id

        async def counting(calls):
            nonlocal queries
            queries += 1
            return await run_batch(calls)

        current.lookups._run = counting
        rows = await asyncio.gather(
            *(
                current.call_row(provider_type="openai", model=model, lookup_id=lookup_id)
                for lookup_id, model, _ in cases
            )
        )
        return rows, queries

    rows, queries = run(main)
    for (lookup_id, model, username), row in zip(cases, rows, strict=True):
        if lookup_id == "nosuchid":
            assert row is None
            continue
        assert row.username == username
        assert (row.model_id is not None) == (model == "fake-gpt")
        assert row.provider_id is not None
    assert queries < 10
