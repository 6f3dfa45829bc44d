"""The daily sums the usage pages read: whoever inserts usage rows (Django, the gateway's COPY
batches, several workers at once, rows older than the sums), the sums over any filter are the
sums over the rows themselves."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.forms import UsageFilterForm
from gateway.models import UsageDay, UsageRecord
from gateway.store import store
from gateway.usage import UsageWriter

from .test_usage import event

NOW = datetime.now(UTC).replace(hour=12)

ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "created_at": st.integers(0, 4).map(
                lambda days: NOW - timedelta(days=days, minutes=days * 7)
            ),
            "user_id": st.sampled_from([1, 2, None]),
            "username": st.sampled_from(["ana", "dev", ""]),
            "provider_type": st.sampled_from(["openai", "anthropic"]),
            "model_identifier": st.sampled_from(["m1", "m2", ""]),
            "error_kind": st.sampled_from(["", "", "upstream_error"]),
            "input_tokens": st.integers(0, 2_000_000_000),
            "output_tokens": st.integers(0, 1_000),
            "cache_read_tokens": st.integers(0, 1_000),
            "cache_write_tokens": st.integers(0, 1_000),
            "web_searches": st.integers(0, 20),
            # Four places: SQLite sums decimals as floats, exact only far from a rounding edge.
            "cost_usd": st.none() | st.decimals(0, 1000, places=4, allow_nan=False),
        }
    ),
    max_size=30,
)
FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "since": st.integers(0, 5).map(lambda days: (NOW - timedelta(days=days)).date()),
        "until": st.integers(0, 5).map(lambda days: (NOW - timedelta(days=days)).date()),
        "person": st.sampled_from(["ana", "dev", ""]),
        "model": st.sampled_from(["m1", "m2"]),
        "provider": st.sampled_from(["openai", "anthropic"]),
        "outcome": st.sampled_from(["succeeded", "failed"]),
    },
)


def filtered(rows, chosen):
    """``rows`` (calls or days) narrowed by the Usage tab's filter form."""
    data = {key: str(value) for key, value in chosen.items()}
    data.setdefault("since", "")  # all days, unless chosen
    form = UsageFilterForm(data)
    assert form.is_valid(), form.errors
    return form.apply(rows)


def assert_days_sum_the_rows(chosen=None):
    chosen = chosen or {}
    calls = filtered(UsageRecord.objects.all(), chosen)
    days = filtered(UsageDay.objects.all(), chosen)
    assert days.totals() == calls.totals()
    for fields in (("username",), ("provider_type", "model_identifier")):
        assert days.grouped_by(*fields) == calls.grouped_by(*fields)
    for user_id in (1, 2):
        mine = calls.filter(user_id=user_id).totals()
        assert days.filter(user_id=user_id).totals() == mine


def as_record(row: dict) -> UsageRecord:
    return UsageRecord(
        endpoint="chat.completions", route="external", status=200, latency_ms=1, **row
    )


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, more=ROWS, chosen=FILTERS)
def test_the_days_sum_rows_django_inserts_under_any_filter(rows, more, chosen):
    UsageRecord.objects.all().delete()
    UsageDay.objects.all().delete()
    UsageRecord.objects.bulk_create(as_record(row) for row in rows)  # one statement
    for row in more:  # and one at a time
        as_record(row).save()
    assert_days_sum_the_rows(chosen)


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(ROWS, min_size=1, max_size=3), chosen=FILTERS)
def test_the_days_sum_the_gateways_batches_under_any_filter(batches, chosen):
    """As the gateway writes them: COPY on PostgreSQL, one INSERT per row on SQLite (the
    datetimes as the driver passes them, not as Django's ORM does)."""
    UsageRecord.objects.all().delete()
    UsageDay.objects.all().delete()

    async def write() -> None:
        current = store()
        try:
            for rows in batches:
                await current.write_usage([event(**row) for row in rows], [])
        finally:
            await current.close()

    asyncio.run(write())
    assert_days_sum_the_rows(chosen)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_writing_the_same_days_at_once_neither_deadlock_nor_lose_a_call():
    """Six workers (each its own event loop, store and connections), each writing 40 batches
    as the gateway does (COPY, and the tokens used), all to the same days, people, models and
    tokens, their rows in opposite orders: every batch adds to the same daily rows."""
    from tokens.models import ApiToken

    users = get_user_model().objects.bulk_create(
        get_user_model()(username=name) for name in ("ana", "dev")
    )
    token_ids = [
        ApiToken.objects.create(user=users[i % 2], name=f"t{i}", lookup_id=f"id{i}").pk
        for i in range(4)
    ]
    keys = [(user, model) for user in users for model in ("m1", "m2", "m3")]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(index: int) -> None:
        order = keys if index % 2 else list(reversed(keys))

        async def write() -> None:
            writer = UsageWriter()
            try:
                for batch in range(40):
                    rows = [
                        event(
                            created_at=NOW - timedelta(days=batch % 3),
                            user_id=user.pk,
                            username=user.username,
                            model_identifier=model,
                            api_key_id=token_ids[(index + n) % 4],
                            input_tokens=index,
                            cost_usd=Decimal("0.001"),
                        )
                        for n, (user, model) in enumerate(order)
                    ]
                    for row in rows:
                        writer.record(row)
                    await writer.flush()  # one batch, one transaction
            finally:
                await writer.close()
                await store().close()
            if writer.dropped or writer.written != 40 * len(keys):
                errors.append(RuntimeError(f"{writer.dropped} rows dropped"))

        try:
            start.wait()
            asyncio.run(write())
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert UsageRecord.objects.count() == 6 * 40 * 6
    assert UsageDay.objects.count() == 3 * len(keys)
    assert_days_sum_the_rows()
    assert UsageDay.objects.totals()["cost"] == Decimal("1.440")
    assert ApiToken.objects.filter(last_used_at__isnull=False).count() == 4


# A usage row's columns as both migrations know them.
ROW = {
    "created_at": NOW,
    "user_id": 1,
    "username": "ana",
    "provider_type": "anthropic",
    "model_identifier": "m1",
    "endpoint": "messages",
    "streamed": False,
    "credential_source": "central",
    "route": "external",
    "user_agent": "",
    "status": 200,
    "error_kind": "",
    "latency_ms": 1,
    "input_tokens": 10,
    "output_tokens": 1,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "cost_usd": Decimal("0.5"),
}


def insert_as_of(migration: str, summed_calls: int | None = None) -> None:
    """With the gateway migrated back to ``migration``, insert ROW as a worker of that version
    writes it (without the later columns), and check the daily sums count ``summed_calls``
    calls then; migrate forward again, whatever happens."""
    from django.core.management import call_command

    insert = (
        f"INSERT INTO gateway_usagerecord ({', '.join(ROW)}) "
        f"VALUES ({', '.join(['%s'] * len(ROW))})"
    )
    call_command("migrate", "gateway", migration, verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute(insert, list(ROW.values()))
            if summed_calls is not None:
                cursor.execute("SELECT sum(call_count) FROM gateway_usageday")
                assert cursor.fetchone()[0] == summed_calls
    finally:
        call_command("migrate", "gateway", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_the_days_keep_summing_across_the_migration_that_counts_web_searches():
    """Migration 0004 adds the searches to the rows and the daily sums. On SQLite adding a
    column builds the table anew, which drops the trigger keeping the sums: rows inserted
    before and after it, and after migrating back, are all summed."""
    insert_as_of("0003")
    UsageRecord.objects.create(**ROW, web_searches=3)
    assert_days_sum_the_rows()
    assert UsageDay.objects.totals()["web_searches"] == 3
    assert UsageDay.objects.totals()["calls"] == 2
    insert_as_of("0003", summed_calls=3)
    assert_days_sum_the_rows()


@pytest.mark.django_db(transaction=True)
def test_the_days_keep_summing_across_the_migration_that_keeps_price_variants():
    """Migration 0005 adds the price variants to the rows: on SQLite that builds the table
    anew again. Rows inserted by a worker of the version before (without the column), before
    and after migrating, and after migrating back, are all summed."""
    insert_as_of("0004")
    with connection.cursor() as cursor:  # an older worker's batch, after the migration
        columns = ", ".join(ROW)
        cursor.execute(
            f"INSERT INTO gateway_usagerecord ({columns}) VALUES ({', '.join(['%s'] * len(ROW))})",
            list(ROW.values()),
        )
    UsageRecord.objects.create(**ROW, price_variants="fast,us_inference")
    assert_days_sum_the_rows()
    assert UsageDay.objects.totals()["calls"] == 3
    variants = sorted(UsageRecord.objects.values_list("price_variants", flat=True))
    assert variants == ["", "", "fast,us_inference"]
    insert_as_of("0004", summed_calls=4)
    assert_days_sum_the_rows()


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_days_were_kept_are_summed_by_the_migration():
    from django.core.management import call_command

    call_command("migrate", "gateway", "0002", verbosity=0)
    try:
        with connection.cursor() as cursor:
            for days_ago, cost in ((0, "0.5"), (0, None), (3, "2")):
                cursor.execute(
                    "INSERT INTO gateway_usagerecord (created_at, user_id, username, "
                    "provider_type, model_identifier, endpoint, streamed, credential_source, "
                    "route, user_agent, status, error_kind, latency_ms, input_tokens, "
                    "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd) VALUES "
                    "(%s, 1, 'ana', 'openai', 'm1', 'x', false, 'central', 'external', '', 200, "
                    "'', 1, 10, 1, 0, 0, %s)",
                    [NOW - timedelta(days=days_ago), cost],
                )
    finally:
        call_command("migrate", "gateway", verbosity=0)
    assert UsageDay.objects.count() == 2
    assert_days_sum_the_rows()
    assert UsageDay.objects.totals()["unpriced"] == 1
    as_record(dict(created_at=NOW, username="ana", provider_type="openai", input_tokens=5)).save()
    assert_days_sum_the_rows()  # and kept from then on


def day_rows() -> list[tuple]:
    fields = [f.name for f in UsageDay._meta.fields if f.name != "id"]
    return sorted(UsageDay.objects.values_list(*fields), key=repr)


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, batch=ROWS)
def test_rebuilding_the_days_gives_what_the_trigger_kept(rows, batch):
    """Rows from Django and from the gateway's own batches (the datetimes each writes)."""
    UsageRecord.objects.all().delete()
    UsageDay.objects.all().delete()
    UsageRecord.objects.bulk_create(as_record(row) for row in rows)

    async def write() -> None:
        try:
            await store().write_usage([event(**row) for row in batch], [])
        finally:
            await store().close()

    asyncio.run(write())
    kept = day_rows()
    assert UsageDay.objects.rebuild() == len(kept)
    assert day_rows() == kept


@pytest.mark.django_db(transaction=True)
def test_the_days_are_summed_again_after_rows_are_deleted_by_hand():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    for days_ago in (0, 0, 1, 2):
        as_record(dict(created_at=NOW - timedelta(days=days_ago), username="ana")).save()
    UsageRecord.objects.filter(created_at__lt=NOW - timedelta(hours=36)).delete()  # by hand
    assert UsageDay.objects.totals()["calls"] == 4  # the trigger only adds
    with pytest.raises(CommandError, match="add --yes to confirm"):
        call_command("usage_rebuild_days")
    out = io.StringIO()
    call_command("usage_rebuild_days", "--yes", stdout=out)
    assert out.getvalue() == "Summed 2 daily totals from the usage rows.\n"
    assert_days_sum_the_rows()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rows_written_while_the_days_are_summed_again_are_counted_once():
    import psycopg

    from tests.servers import database_url

    done = threading.Event()
    errors: list[BaseException] = []

    def keep_writing() -> None:
        try:
            with psycopg.connect(database_url(), autocommit=True) as own:
                while not done.is_set():
                    own.execute(
                        "INSERT INTO gateway_usagerecord (created_at, user_id, username, "
                        "provider_type, model_identifier, endpoint, streamed, "
                        "credential_source, route, user_agent, status, error_kind, latency_ms, "
                        "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
                        "cost_usd) SELECT now() - i * interval '7 hours', 1, 'ana', 'openai', "
                        "'m1', 'x', false, 'central', 'external', '', 200, '', 1, i, 1, 0, 0, "
                        "0.001 FROM generate_series(1, 20) AS i"
                    )
        except BaseException as error:  # reported below
            errors.append(error)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for _ in range(20):  # without the lock, one in a few collides with a write
            UsageDay.objects.rebuild()
    finally:
        done.set()
        writer.join(30)
    assert errors == []
    assert UsageRecord.objects.count() >= 20
    assert_days_sum_the_rows()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_calling_through_two_workers_at_once_see_every_call_on_their_pages(
    deployment, other_developer, admin_user, django_db_blocker
):
    """Over HTTP: two people's calls, in two formats, at once through two worker processes
    (each batching its rows into the same days), while an operator sums the days afresh.
    The Usage tab and each person's Settings → Usage count every call once."""
    import re

    import httpx
    from django.urls import reverse

    from tests.servers import served_app, signed_in_client
    from tokens.services import token_create

    from .conftest import wait_for_usage

    other = token_create(user=other_developer, name="t", lifetime=timedelta(days=1), actor=None)
    tokens = [deployment.token.secret, other.secret]
    chat = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
    message = {"model": "claude-fake", "max_tokens": 8, "messages": chat["messages"]}

    async def burst(base: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=80)) as c:

            async def one(i: int) -> int:
                token = tokens[i % 2]
                if i % 4 < 2:
                    answer = await c.post(
                        f"{base}/api/v2/aibridge/openai/v1/chat/completions",
                        json=chat,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                else:
                    answer = await c.post(
                        f"{base}/api/v2/aibridge/anthropic/v1/messages",
                        json=message,
                        headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
                    )
                return answer.status_code

            return list(await asyncio.gather(*(one(i) for i in range(240))))

    rebuilding = threading.Event()
    rebuild_errors: list[BaseException] = []

    def rebuild_meanwhile() -> None:
        try:
            while not rebuilding.is_set():
                UsageDay.objects.rebuild()
        except BaseException as error:  # reported below
            rebuild_errors.append(error)
        finally:
            connection.close()

    def calls_shown(page: str) -> int:
        found = re.search(r"<dt>Calls</dt><dd>([\d,]+)", page)
        assert found, page[:2000]
        return int(found.group(1).replace(",", ""))

    with django_db_blocker.unblock(), served_app(workers=2) as base:
        operator = threading.Thread(target=rebuild_meanwhile)
        operator.start()
        try:
            statuses = asyncio.run(burst(base))
        finally:
            rebuilding.set()
            operator.join(30)
        rows = wait_for_usage(240)
        admin_page = signed_in_client(base, admin_user).get(reverse("usage:list")).text
        own_page = signed_in_client(base, other_developer).get(reverse("usage:mine")).text

    assert statuses == [200] * 240
    assert rebuild_errors == []
    assert len(rows) == 240
    assert_days_sum_the_rows()
    assert calls_shown(admin_page) == 240
    assert calls_shown(own_page) == 120
