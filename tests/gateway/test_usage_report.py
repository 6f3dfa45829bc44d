"""``manage.py usage_report``: the Usage tab's sums for operators, as a table or JSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_usage_tab import NOW, call

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("usage_report", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def calls():
    call(username="dev", cost_usd=Decimal("0.25"))
    call(username="dev", cost_usd=Decimal("0.50"))
    call(username="ana", model_identifier="local-llama", cost_usd=None)
    call(username="old", created_at=NOW - timedelta(days=45), cost_usd=Decimal("9"))


def test_a_table_per_person_with_a_total_over_the_last_30_days(calls):
    lines = run().splitlines()
    assert lines[0].split()[:3] == ["USERNAME", "CALLS", "FAILED"]
    dev, ana, total = (line.split() for line in lines[1:])
    assert (dev[0], dev[1], dev[-2], dev[-1]) == ("dev", "2", "0.7500", "0")
    assert (ana[0], ana[-2], ana[-1]) == ("ana", "unknown", "1")  # never shown as free
    assert (total[0], total[1], total[-2], total[-1]) == ("TOTAL", "3", "0.7500", "1")


def test_the_web_searches_are_counted_per_group(calls):
    call(username="ana", model_identifier="claude", web_searches=2, cost_usd=Decimal("0.05"))
    lines = run().splitlines()
    headers = lines[0].split()
    assert "SEARCHES" in headers
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    # Columns from the right: cost, unpriced, and the searches before them.
    assert rows["ana"][-3] == "2" and rows["dev"][-3] == "0" and rows["TOTAL"][-3] == "2"
    report = json.loads(run("--json"))
    assert report["totals"]["web_searches"] == 2


def test_json_per_model_and_chosen_days(calls):
    since = (NOW - timedelta(days=60)).date().isoformat()
    report = json.loads(run("--by", "model", "--since", since, "--json"))
    assert report["since"] == since and report["totals"]["calls"] == 4
    models = {group["model_identifier"]: group for group in report["groups"]}
    assert Decimal(models["gpt-5"]["cost"]) == Decimal("9.75")
    assert models["local-llama"]["cost"] is None and models["local-llama"]["unpriced"] == 1


def test_no_calls_is_said_in_words(db):
    assert run("--by", "provider").startswith("No calls through the AI Gateway since ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "--since must be a day as YYYY-MM-DD"),
        (["--until", "2026-02-30"], "--until must be a day as YYYY-MM-DD"),
        (["--since", "2026-05-02", "--until", "2026-05-01"], "--until is before --since"),
    ],
)
def test_a_bad_day_is_one_clear_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=20).filter(lambda t: "\x00" not in t and not t.startswith("-")))
def test_whatever_day_is_typed_the_answer_is_a_report_or_one_clear_error(db, text):
    try:
        run("--since", text)
    except CommandError as error:
        assert "--since" in str(error) or "--until" in str(error)
