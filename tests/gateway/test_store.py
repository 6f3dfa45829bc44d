"""The gateway's lookup: calls that arrive while the lookups in flight are busy share the next
query, and each still gets its own, fresh row."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from gateway.store import DjangoThreadStore, PostgresStore, SharedLookups, store
from models_catalog.models import ModelConfig
from providers.models import Provider
from tokens.services import token_create
from userkeys.services import user_key_save

from .conftest import admin_sql, run, wait_for_usage


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
def test_asyncpg_rows_read_the_same_as_rows_through_django(deployment):
    """The PostgreSQL store builds a call's row without converting each column (asyncpg's
    types are already right); Django's driver path converts. Both must agree, NULLs from the
    optional joins (no personal key, no such model, no such provider) included."""
    openai = Provider.objects.get(type="openai")
    user_key_save(user=deployment.developer, provider=openai, raw_key="sk-own-key", actor=None)
    lookup_id = deployment.token.secret.split("_")[1]
    ModelConfig.objects.filter(identifier="claude-fake").update(
        long_context_threshold=200_000, long_context_input_price=6, long_context_output_price="22.5"
    )
    ModelConfig.objects.filter(identifier="fake-gpt").update(
        flex_price_factor="0.5", priority_price_factor="1.75", ultrafast_price_factor=6
    )
    ModelConfig.objects.filter(identifier="claude-fake").update(
        us_inference_price_factor="1.1", fast_mode_price_factor=6
    )
    cases = [
        ("openai", "fake-gpt"),
        ("anthropic", "not-a-model"),
        ("no-such-type", "x"),
        ("anthropic", "claude-fake"),
    ]

    async def rows(make_store):
        current = make_store()
        return type(current), [
            await current.call_row(provider_type=provider_type, model=model, lookup_id=lookup_id)
            for provider_type, model in cases
        ]

    kind, through_asyncpg = run(lambda: rows(store))
    assert kind is PostgresStore
    _, through_django = asyncio.run(rows(DjangoThreadStore))
    assert through_asyncpg == through_django
    with_key, no_model, no_provider, claude = through_asyncpg
    assert with_key.user_key_ciphertext and with_key.model_id is not None
    # Micro-USD per 1M tokens, then per 1,000 searches.
    assert with_key.prices == (3_000_000, 15_000_000, 300_000, 4_000_000, None, 10_000_000)
    assert claude.prices == (3_000_000, 15_000_000, 300_000, 4_000_000, 6_000_000, 10_000_000)
    assert with_key.price_factors == (500_000, 1_750_000, None, None, 6_000_000)  # millionths
    assert claude.price_factors == (None, None, 1_100_000, 6_000_000, None)
    assert no_provider.price_factors == (None, None, None, None, None)
    assert claude.long_context == (200_000, 6_000_000, 22_500_000)
    assert with_key.long_context == no_provider.long_context == (None, None, None)
    assert with_key.expires_at is not None and with_key.expires_at.tzinfo is not None
    assert no_model.model_id is None and no_model.user_key_ciphertext is None
    assert no_provider.provider_id is None and no_provider.provider_enabled is False
    assert no_provider.central_ciphertext == "" and no_provider.prices == (None,) * 6


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_calling_at_once_over_http_each_get_their_own_credential(
    deployment, other_developer, save_user_key, django_db_blocker
):
    """Many calls at once from two people (and a revoked token) through two worker processes:
    however lookups are shared, each call carries its own person's credential, is billed to
    that person, and the revoked token never reaches the provider."""
    from providers.models import Provider
    from tests.servers import served_app
    from tokens.models import ApiToken
    from tokens.services import token_revoke

    from .conftest import CENTRAL

    provider = Provider.objects.get(type="openai")
    save_user_key(deployment.developer, provider, "sk-own-key-of-dev")  # dev: personal key
    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    revoked = token_create(user=other_developer, name="r", lifetime=timedelta(days=1), actor=None)
    token_revoke(token=ApiToken.objects.get(pk=revoked.token.pk), actor=None)
    callers = {
        "dev": deployment.token.secret,
        "stranger": other.secret,
        "revoked": revoked.secret,
    }
    expected_key = {"dev": "sk-own-key-of-dev", "stranger": CENTRAL["openai"]}
    calls = [(name, i) for i in range(40) for name in callers]

    async def call_all(base: str) -> list[tuple[str, int, int]]:
        limits = httpx.Limits(max_connections=120)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:

            async def one(name: str, i: int) -> tuple[str, int, int]:
                response = await client.post(
                    f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                    json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
                    headers={
                        "Authorization": f"Bearer {callers[name]}",
                        "x-caller": f"{name}-{i}",
                    },
                )
                return name, i, response.status_code

            return await asyncio.gather(*(one(name, i) for name, i in calls))

    with django_db_blocker.unblock(), served_app(workers=2) as base:
        results = asyncio.run(call_all(base))

    for name, i, status in results:
        assert status == (401 if name == "revoked" else 200), (name, i, status)
    received = deployment.fake.calls("/chat/completions")
    assert len(received) == 80
    for request in received:
        name = request.headers["x-caller"].split("-")[0]
        assert request.headers["authorization"] == f"Bearer {expected_key[name]}"
    rows = wait_for_usage(80)
    by_user: dict[str, set[str]] = {}
    for row in rows:
        by_user.setdefault(row.username, set()).add(row.credential_source)
    assert {user: len([r for r in rows if r.username == user]) for user in by_user} == {
        deployment.developer.username: 40,
        other_developer.username: 40,
    }
    assert by_user == {
        deployment.developer.username: {"user"},
        other_developer.username: {"central"},
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_calling_at_once_through_the_egress_proxy_keep_their_own_credentials(
    deployment, other_developer, save_user_key, django_db_blocker
):
    """The same calls through two workers whose way out is an HTTP proxy: every call goes
    through it, with the proxy's credentials for the proxy only, and each reaches the
    provider with its own person's key."""
    from providers.models import Provider
    from tests.servers import ForwardingProxy, served_app

    from .conftest import CENTRAL

    provider = Provider.objects.get(type="openai")
    save_user_key(deployment.developer, provider, "sk-own-key-of-dev")
    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    callers = {"dev": deployment.token.secret, "stranger": other.secret}
    expected_key = {"dev": "sk-own-key-of-dev", "stranger": CENTRAL["openai"]}
    calls = [(name, i) for i in range(30) for name in callers]

    async def call_all(base: str) -> list[int]:
        async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=60)) as c:

            async def one(name: str, i: int) -> int:
                response = await c.post(
                    f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                    json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": f"Bearer {callers[name]}", "x-caller": name},
                )
                return response.status_code

            return await asyncio.gather(*(one(name, i) for name, i in calls))

    with ForwardingProxy() as proxy, django_db_blocker.unblock():
        proxy_url = f"http://egress:proxy-canary@127.0.0.1:{proxy.port}"
        with served_app(workers=2, HTTP_PROXY=proxy_url) as base:
            statuses = asyncio.run(call_all(base))

    assert statuses == [200] * 60
    asked = [head for head in proxy.heads if b"/chat/completions" in head]
    assert len(asked) == 60
    assert all(head.startswith(b"POST http://127.0.0.1:") for head in asked)
    assert all(b"proxy-authorization: Basic ZWdyZXNzOnByb3h5LWNhbmFyeQ==" in h for h in asked)
    received = deployment.fake.calls("/chat/completions")
    assert len(received) == 60
    for request in received:
        assert "proxy-authorization" not in request.headers
        expected = expected_key[request.headers["x-caller"]]
        assert request.headers["authorization"] == f"Bearer {expected}"
    rows = wait_for_usage(60)
    assert sorted((row.username, row.credential_source) for row in rows) == sorted(
        [(deployment.developer.username, "user")] * 30
        + [(other_developer.username, "central")] * 30
    )


def _end_backends(pids: list[int]) -> None:
    """End these PostgreSQL backends as a restart or failover would, and wait until they are
    gone. Synchronous on purpose: the event loop that holds the connections has no chance to
    notice before its next read."""
    for pid in pids:
        admin_sql("SELECT pg_terminate_backend(%s, 5000)", pid)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_connections_the_database_ended_are_replaced_and_the_lookups_still_answered(deployment):
    """After a database restart every pooled connection is dead. One that the event loop saw
    close is skipped; one whose end is noticed only by the lookup sent on it costs that
    lookup one more try, on a fresh connection. Neither reaches the caller."""
    lookup_id = deployment.token.secret.split("_")[1]

    async def main():
        current = store()
        assert isinstance(current, PostgresStore)
        retried = []
        transient = current.transient

        def counting(error):
            retried.append(type(error).__name__)
            return transient(error)

        current.transient = counting  # type: ignore[method-assign]

        async def lookup():
            row = await current.call_row(
                provider_type="openai", model="fake-gpt", lookup_id=lookup_id
            )
            return row.username if row else None

        def pids():
            return [connection.get_server_pid() for connection in current.connections._idle]

        answers = [await lookup()]
        _end_backends(pids())
        await asyncio.sleep(0.3)  # the loop sees the connection close while idle
        answers.append(await lookup())
        seen_closing = list(retried)
        _end_backends(pids())  # and now with no chance to see it first
        answers.append(await lookup())
        # Two idle connections, both ended unnoticed: the first lookup fails on one; while it
        # waited the loop saw the other close, so the one more try skips it too.
        await asyncio.gather(lookup(), lookup(), lookup())
        two_idle = len(current.connections._idle)
        _end_backends(pids())
        answers.append(await lookup())
        return answers, seen_closing, retried, two_idle, current.connections._open

    answers, seen_closing, retried, two_idle, still_open = run(main)
    assert answers == [deployment.developer.username] * 4
    assert seen_closing == []  # skipped, never sent a query
    assert len(retried) == 2  # each time one dead connection's failed lookup, then a fresh one
    assert two_idle == 2
    assert still_open == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_connections_is_a_503_in_each_callers_format_then_recovers(
    deployment, django_db_blocker
):
    """While the database refuses connections (down, or starting up), calls are answered
    503 in their caller's format, not with a bare 500, and the log gets one line for the
    outage instead of a traceback per call. The next call after it is back succeeds."""
    from django.db import connection

    from tests import servers

    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    token = deployment.token.secret
    calls = [
        (
            "openai/v1/chat/completions",
            {"Authorization": f"Bearer {token}"},
            {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            "anthropic/v1/messages",
            {"x-api-key": token},
            {
                "model": "claude-fake",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": "x"}],
            },
        ),
        (
            "google/v1/models/gemini-fake:generateContent",
            {"x-goog-api-key": token},
            {"contents": [{"parts": [{"text": "x"}]}]},
        ),
        ("openai/v1/models", {"Authorization": f"Bearer {token}"}, None),
    ]

    def call_each(base):
        answers = []
        for path, headers, body in calls:
            url = f"{base}/api/v2/aibridge/{path}"
            if body is None:
                answers.append(httpx.get(url, headers=headers, timeout=20))
            else:
                answers.append(httpx.post(url, json=body, headers=headers, timeout=20))
        return answers

    with django_db_blocker.unblock(), servers.served_app(workers=1) as base:
        assert [a.status_code for a in call_each(base)] == [200] * 4
        admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin_sql(  # every connection but this test's own (Django's)
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                name,
                own_pid,
            )
            during = call_each(base) + call_each(base)
        finally:
            admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        after = call_each(base)

    assert [a.status_code for a in during] == [503] * 8
    openai, anthropic, google, listing = during[:4]
    assert openai.json()["error"]["code"] == "database_unavailable"
    assert "cannot reach its database" in openai.json()["error"]["message"]
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    assert google.json()["error"]["status"] == "UNAVAILABLE"
    assert listing.json()["error"]["code"] == "database_unavailable"
    assert [a.status_code for a in after] == [200] * 4
    log = servers.last_output
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert log.count("the database did not answer") == 1
    assert token not in log


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_restart_under_load_fails_no_call_and_leaves_the_pool_whole(
    deployment, django_db_blocker
):
    """Calls from many connections at once while every backend of the gateway is ended
    twice, as a restart or failover would (mid-query, waiting for a connection, idle): the
    pool's accounting survives the race (afterwards calls succeed and the worker holds no
    more than its pool), no call is a server error or a traceback, and at most a few that
    met a restart twice are 503s. (That a lookup on a dead connection gets one more try is
    shown exactly by the test above; here the timing decides which calls meet a restart.)"""
    from django.db import connection

    from tests import servers

    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    token = deployment.token.secret
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}

    async def load(base: str) -> list[int]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def one() -> int:
                response = await client.post(
                    f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                return response.status_code

            async def restarts() -> None:
                for _ in range(2):
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(
                        admin_sql,
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> %s",
                        name,
                        own_pid,
                    )

            restarting = asyncio.ensure_future(restarts())
            statuses = await asyncio.gather(*(one() for _ in range(400)))
            await restarting
            return list(statuses)

    with django_db_blocker.unblock(), servers.served_app(workers=1) as base:
        statuses = asyncio.run(load(base))
        after = httpx.post(
            f"{base}/api/v2/aibridge/openai/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s "
                "AND backend_type = 'client backend'",
                [name, own_pid],
            )
            (held,) = cursor.fetchone()

    # A call whose one more try meets the same restart (its fresh connection ended by it too)
    # is a 503, which the SDKs retry.
    counts = {status: statuses.count(status) for status in set(statuses)}
    assert set(counts) <= {200, 503} and counts.get(503, 0) <= 8, counts
    assert after.status_code == 200
    assert held <= 4 + 1  # the gateway's pool, and Django's own connection of the worker
    assert "Traceback" not in servers.last_output
    # The restarts also met the usage writer: a batch it could not write was kept, not lost.
    answered = counts[200] + 1
    assert len(wait_for_usage(answered)) == answered


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lock_held_past_the_statement_timeout_is_a_503_and_usage_rows_wait_for_it(
    deployment, settings, caplog
):
    """A migration or a stuck transaction holding the tokens table: each lookup gives up
    after the statement timeout (once, not tried again) and the call is answered 503, and
    the usage rows, whose write waits on the same lock, are kept and written once it is
    let go."""
    import logging
    import time

    import asyncpg

    from gateway.models import UsageRecord
    from gateway.store import DatabaseUnavailable
    from gateway.usage import writer
    from tests.servers import database_url
    from tokens.models import ApiToken

    from .test_usage import event

    settings.AI_GATEWAY_DB_STATEMENT_TIMEOUT = 0.5
    caplog.set_level(logging.WARNING)
    lookup_id = deployment.token.secret.split("_")[1]
    token_id = deployment.token.token.pk

    async def main():
        current = store()

        async def lookup():
            return await current.call_row(
                provider_type="openai", model="fake-gpt", lookup_id=lookup_id
            )

        await lookup()  # the pool's connections open before the lock is taken
        holder = await asyncpg.connect(database_url())
        locked = holder.transaction()
        await locked.start()
        await holder.execute(f'LOCK TABLE "{ApiToken._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match="statement timeout") as refused:
                async with asyncio.timeout(5):  # without a statement timeout: for ever
                    await lookup()
            assert refused.value.busy
            waited = time.monotonic() - started
            for i in range(7):
                writer().record(event(input_tokens=i, api_key_id=token_id, username="locked"))
            await asyncio.sleep(2.0)  # the batch's two tries timed out and it was kept
            kept = len(writer()._rows)
        finally:
            await locked.rollback()
            await holder.close()
        row = await lookup()
        await writer().flush()
        return waited, kept, row.username, writer().written

    waited, kept, username, written = run(main)
    assert 0.5 <= waited < 1.0  # one statement timeout: a second try would wait 1.0 s
    assert (kept, username, written) == (7, "dev", 7)
    assert "could not write 7 usage row(s) (QueryCanceledError" in caplog.text
    assert "Traceback" not in caplog.text
    assert UsageRecord.objects.filter(username="locked").count() == 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_callers_on_two_workers_meet_a_held_lock_with_503s_then_carry_on(
    deployment, django_db_blocker
):
    """Over HTTP, two worker processes, 40 calls at once in two formats while a migration's
    lock holds the tokens table: each is answered 503 in its caller's format within about
    the statement timeout (no call hangs, none is a 500, no traceback). Once the lock is
    let go the same burst succeeds, every call with its usage row."""
    import time

    import psycopg

    from tests import servers
    from tests.servers import database_url
    from tokens.models import ApiToken

    token = deployment.token.secret
    chat = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
    message = {
        "model": "claude-fake",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x"}],
    }

    async def burst(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> httpx.Response:
                if i % 2:
                    return await client.post(
                        f"{base}/api/v2/aibridge/anthropic/v1/messages",
                        json=message,
                        headers={"x-api-key": token},
                    )
                return await client.post(
                    f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                    json=chat,
                    headers={"Authorization": f"Bearer {token}"},
                )

            return list(await asyncio.gather(*(one(i) for i in range(40))))

    with (
        django_db_blocker.unblock(),
        servers.served_app(workers=2, AI_GATEWAY_DB_STATEMENT_TIMEOUT="0.5") as base,
    ):
        asyncio.run(burst(base))  # every worker's pool opened, the usual way
        with psycopg.connect(database_url()) as holder:
            holder.execute(f'LOCK TABLE "{ApiToken._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
            started = time.monotonic()
            locked = asyncio.run(burst(base))
            waited = time.monotonic() - started
            holder.rollback()
        after = asyncio.run(burst(base))

    assert [r.status_code for r in locked] == [503] * 40
    assert waited < 5  # about the statement timeout, not as long as the lock was held
    openai_errors = [r.json()["error"] for r in locked[0::2]]
    anthropic_errors = [r.json() for r in locked[1::2]]
    assert {e["code"] for e in openai_errors} == {"database_unavailable"}
    # Not "cannot reach": it answered, late. Both say to try again, as the SDKs will.
    busy = "The AI Gateway's database is too busy to answer right now. Try again in a moment."
    assert {e["message"] for e in openai_errors} == {busy}
    assert {e["type"] for e in anthropic_errors} == {"error"}
    assert [r.status_code for r in after] == [200] * 40
    assert "Traceback" not in servers.last_output
    assert len(wait_for_usage(80)) == 80  # the two bursts that were answered


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_an_embedded_database_held_by_another_process_is_too_busy_not_out_of_reach(
    deployment, tmp_path
):
    """On SQLite a lookup that finds another process's exclusive lock past the busy timeout
    gets "database is locked": the database is there, so the 503 says "too busy"."""
    import sqlite3

    from django.db import connection

    from gateway.app import application

    async def send():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/openai/v1/chat/completions",
                json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {deployment.token.secret}"},
            )

    # In WAL mode only a connection in exclusive locking mode keeps readers out, and it can
    # take that lock only while no other connection has the file open. Other tests in this
    # process (a live server's thread) may: so the gateway reads a copy nobody else opened.
    own = str(tmp_path / "held.sqlite3")
    with sqlite3.connect(connection.settings_dict["NAME"]) as source, sqlite3.connect(own) as copy:
        source.backup(copy)
    settings_dict = connection.settings_dict  # shared by every thread's connection
    name, busy_timeout = settings_dict["NAME"], settings_dict["OPTIONS"].get("timeout")
    connection.close()
    settings_dict["NAME"], settings_dict["OPTIONS"]["timeout"] = own, 0.05  # per try
    holder = sqlite3.connect(own, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE providers_provider SET enabled = enabled")
        try:
            held = run(send)
        finally:
            holder.execute("ROLLBACK")
            holder.execute("PRAGMA locking_mode=NORMAL")
            holder.execute("SELECT 1 FROM providers_provider")  # lets the lock go
            holder.close()
        after = run(send)
    finally:
        connection.close()
        settings_dict["NAME"], settings_dict["OPTIONS"]["timeout"] = name, busy_timeout

    assert held.status_code == 503
    assert held.json()["error"] == {
        "message": "The AI Gateway's database is too busy to answer right now. "
        "Try again in a moment.",
        "type": "api_error",
        "param": None,
        "code": "database_unavailable",
    }
    assert after.status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_database_connection_is_held_while_answers_stream(deployment, django_db_blocker):
    """Twelve two-second streams at once on a worker whose pool holds two connections: had a
    stream kept its connection, they would run two at a time (twelve seconds) and the pool's
    waiters would get no first byte. The worker never holds more than its pool."""
    import threading
    import time

    import psycopg
    from django.db import connection

    from tests.servers import database_url, served_app

    headers = {
        "Authorization": f"Bearer {deployment.token.secret}",
        "x-fake-chunks": "8",
        "x-fake-chunk-delay": "0.25",
    }
    chat = {
        "model": "fake-gpt",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    most_connections = 0
    sampling = threading.Event()

    def sample() -> None:  # the server's connections to the test database, every 20 ms
        nonlocal most_connections
        with psycopg.connect(database_url(), autocommit=True) as sampler:
            while not sampling.is_set():
                (count,) = sampler.execute(  # type: ignore[misc]
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid NOT IN (pg_backend_pid(), %s)",
                    (own_pid,),
                ).fetchone()
                most_connections = max(most_connections, count)
                time.sleep(0.02)

    async def streams(base: str) -> list[tuple[int, float]]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one() -> tuple[int, float]:
                started, first = time.monotonic(), 0.0
                url = f"{base}/api/v2/aibridge/openai/v1/chat/completions"
                async with client.stream("POST", url, json=chat, headers=headers) as answer:
                    async for _ in answer.aiter_bytes():
                        first = first or time.monotonic() - started
                return answer.status_code, first

            return list(await asyncio.gather(*(one() for _ in range(12))))

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    sampler = threading.Thread(target=sample)
    with django_db_blocker.unblock(), served_app(workers=1, AI_GATEWAY_DB_POOL_SIZE="2") as base:
        sampler.start()
        started = time.monotonic()
        results = asyncio.run(streams(base))
        elapsed = time.monotonic() - started
        sampling.set()
        sampler.join()

    assert [status for status, _ in results] == [200] * 12
    assert max(first for _, first in results) < 1.5
    assert elapsed < 6
    assert 1 <= most_connections <= 2
    assert len(wait_for_usage(12)) == 12
