"""``manage.py usage_prune``: old usage rows go in batches, the kept days stay whole."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditAction, AuditEntry
from audit.presentation import type_label
from gateway.management.commands import usage_prune
from gateway.models import UsageDay, UsageRecord

from .test_usage_tab import NOW, call

pytestmark = pytest.mark.django_db

TODAY_START = datetime.combine(NOW.date(), time.min, UTC)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("usage_prune", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def calls():
    call(username="today", created_at=NOW)
    call(username="first-kept-day", created_at=TODAY_START - timedelta(days=29))
    call(username="just-before", created_at=TODAY_START - timedelta(days=29, microseconds=1))
    call(username="old", created_at=NOW - timedelta(days=400))


def test_keeps_the_last_days_whole_and_deletes_what_is_older(calls):
    out, _ = run("--keep-days", "30", "--yes")
    assert "Deleted 2 usage rows from before" in out
    kept = set(UsageRecord.objects.values_list("username", flat=True))
    assert kept == {"today", "first-kept-day"}  # the same days the Usage tab shows by default
    # The daily sums the pages read went with them, day for day.
    assert set(UsageDay.objects.values_list("username", flat=True)) == kept
    assert UsageDay.objects.totals() == UsageRecord.objects.totals()
    entry = AuditEntry.objects.get()
    assert (entry.actor_label, entry.action) == ("manage.py", AuditAction.DELETE)
    assert entry.object_repr.startswith("2 usage rows from before")
    assert type_label(entry.object_type) == "Usage record"
    run("--keep-days", "30", "--yes")  # nothing more to delete: nothing more recorded
    assert AuditEntry.objects.count() == 1


def test_a_dry_run_counts_and_deletes_nothing(calls):
    out, _ = run("--keep-days", "30", "--dry-run")
    assert out.startswith("2 usage rows from before") and UsageRecord.objects.count() == 4
    assert UsageDay.objects.totals()["calls"] == 4
    assert not AuditEntry.objects.exists()


def test_without_yes_nothing_goes(calls):
    with pytest.raises(CommandError, match="add --yes to confirm"):
        run("--keep-days", "1")
    assert UsageRecord.objects.count() == 4


def test_deletes_in_batches_and_says_how_far_it_got(calls, monkeypatch):
    monkeypatch.setattr(usage_prune, "BATCH", 1)
    out, err = run("--keep-days", "1", "--yes")
    assert "Deleted 3 usage rows" in out
    assert err.splitlines() == ["  1 deleted…", "  2 deleted…", "  3 deleted…"]
    assert list(UsageRecord.objects.values_list("username", flat=True)) == ["today"]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.integers(min_value=-(10**12), max_value=10**12))
def test_any_number_of_days_is_a_count_or_one_line(days):
    try:
        run("--keep-days", str(days), "--dry-run")
    except CommandError as error:
        assert "\n" not in str(error) and "--keep-days" in str(error)
