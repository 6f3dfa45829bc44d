"""The Admin dialog's Usage tab: totals, per person and per model, each call, the filters and
the CSV export, over usage rows as the gateway writes them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.models import UsageRecord
from ui.templatetags.ui import usd

pytestmark = pytest.mark.django_db

URL = reverse("usage:list")
NOW = datetime.now(UTC)


def call(**fields) -> UsageRecord:
    values = {
        "created_at": NOW,
        "username": "dev",
        "provider_type": "openai",
        "model_identifier": "gpt-5",
        "endpoint": "chat.completions",
        "route": "external",
        "credential_source": "central",
        "status": 200,
        "latency_ms": 12.0,
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": Decimal("0.25"),
        **fields,
    }
    return UsageRecord.objects.create(**values)


@pytest.fixture
def calls():
    call()
    call(username="dev", cost_usd=Decimal("0.50"), streamed=True)
    call(username="ana", provider_type="anthropic", model_identifier="claude", cost_usd=None)
    call(
        username="ana",
        status=502,
        error_kind="upstream_unreachable",
        input_tokens=0,
        output_tokens=0,
        cost_usd=None,
    )
    call(username="old", created_at=NOW - timedelta(days=45), cost_usd=Decimal("9"))


def page_text(client, query: str = "") -> str:
    response = client.get(URL + query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_tab_has_an_empty_state(staff_client):
    text = page_text(staff_client)
    assert "No calls through the AI Gateway in these days." in text
    assert 'aria-current="page">Usage</a>' in text


def test_developers_do_not_see_usage(developer_client):
    assert developer_client.get(URL).status_code in (302, 403)


def test_totals_per_person_and_per_model_over_the_last_30_days(staff_client, calls):
    response = staff_client.get(URL)
    totals, people, models = (response.context[k] for k in ("totals", "people", "models"))
    # The 45-day-old call is outside the default days.
    assert (totals["calls"], totals["failed"], totals["cost"]) == (4, 1, Decimal("0.75"))
    assert totals["unpriced"] == 1  # tokens spent at unknown prices; the failed call spent none
    assert totals["input"] == 300 and totals["output"] == 30
    assert [(p["username"], p["calls"], p["cost"]) for p in people] == [
        ("dev", 2, Decimal("0.75")),
        ("ana", 2, None),
    ]
    assert [(m["model_identifier"], m["calls"]) for m in models] == [("gpt-5", 3), ("claude", 1)]
    text = response.content.decode()
    assert "$0.75" in text and "+ 1 call at unknown prices" in text
    assert "(1 failed)" in text and "upstream_unreachable" in text
    assert "Anthropic" in text  # the provider's label, not its type


def test_web_searches_are_summed_shown_per_call_and_exported(staff_client, calls):
    """A call's cost includes its searches; the tab says how many ran, so a costly call is
    explained."""
    assert "Web searches" not in page_text(staff_client)  # none ran: not a row of zeros
    call(username="ana", provider_type="anthropic", model_identifier="claude", web_searches=3)
    call(username="ana", provider_type="anthropic", model_identifier="claude", web_searches=1)
    response = staff_client.get(URL)
    assert response.context["totals"]["web_searches"] == 4
    text = response.content.decode()
    assert "<dt>Web searches</dt><dd>4</dd>" in text
    assert "+ 3 searches" in text and "+ 1 search<" in text
    exported = staff_client.get(URL + "?format=csv&person=ana")
    table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    column = table[0].index("web searches")
    assert sorted(row[column] for row in table[1:]) == ["0", "0", "1", "3"]


def test_a_call_priced_as_a_variant_says_so_and_exports_it(staff_client, calls):
    """A call in fast mode or on a service tier costs a multiple of its tokens' usual price:
    the tab says what it ran under, so its cost is explained, and the CSV has it."""
    call(username="ana", model_identifier="claude-opus", price_variants="fast,us_inference")
    call(username="ana", model_identifier="gpt-6", price_variants="unknown")
    text = page_text(staff_client)
    assert ">fast mode, US-only inference<" in text
    assert ">a service tier with no price here<" in text
    exported = staff_client.get(URL + "?format=csv&person=ana")
    table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    column = table[0].index("priced as")
    assert sorted(row[column] for row in table[1:]) == ["", "", "fast,us_inference", "unknown"]


def test_each_filter_narrows_the_totals_and_the_calls(staff_client, calls):
    def counted(query: str) -> int:
        return staff_client.get(URL + query).context["totals"]["calls"]

    assert counted("?person=ana") == 2
    # The choices stay every person and model of the days, not only those that match.
    narrowed = page_text(staff_client, "?person=ana")
    assert "<option>dev</option>" in narrowed and "<option>gpt-5</option>" in narrowed
    assert "<option>old</option>" not in narrowed  # outside the days
    assert counted("?provider=anthropic") == 1
    assert counted("?model=gpt-5") == 3
    assert counted("?outcome=failed") == 1
    assert counted("?outcome=succeeded") == 3
    since = (NOW - timedelta(days=60)).date().isoformat()
    assert counted(f"?since={since}") == 5
    assert counted(f"?since={since}&until={(NOW - timedelta(days=40)).date()}") == 1
    assert counted("?since=") == 5  # an emptied start day: all days


def test_a_filter_that_does_not_parse_is_shown_with_its_error_and_the_rest_still_apply(
    staff_client, calls
):
    response = staff_client.get(URL + "?since=yesterday&person=ana&provider=nope")
    text = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid date." in text and 'aria-invalid="true"' in text
    assert "Select a valid choice." in text
    assert response.context["totals"]["calls"] == 2  # person applies, over all days


def test_a_person_or_model_no_call_has_keeps_its_choice_and_says_nothing_matches(staff_client):
    text = page_text(staff_client, "?person=nobody")
    assert "No calls match these filters" in text
    assert "<option selected>nobody</option>" in text


def test_calls_are_paginated_newest_first(staff_client):
    for minutes in range(60):
        call(created_at=NOW - timedelta(minutes=minutes), model_identifier=f"m{minutes}")
    first = staff_client.get(URL).context["page"]
    assert first.paginator.num_pages == 2
    assert first.object_list[0].model_identifier == "m0"
    last = list(staff_client.get(URL + "?page=2").context["page"].object_list)[-1]
    assert last.model_identifier == "m59"
    assert staff_client.get(URL + "?page=zzz").status_code == 200


def test_the_page_costs_the_same_few_queries_however_many_calls(
    staff_client, django_assert_max_num_queries
):
    for index in range(200):
        call(username=f"user{index % 30}", model_identifier=f"model{index % 15}")
    # The session, user and token, the tab's four and its charts' one, and the budgets with
    # their counters.
    with django_assert_max_num_queries(10):
        response = staff_client.get(URL)
    assert "And 20 more" in response.content.decode()  # people beyond the first 10


def test_the_csv_export_follows_the_filters_and_defuses_formulas(staff_client, calls):
    call(username="=HYPERLINK(1)", user_agent="@evil")
    response = staff_client.get(URL + "?outcome=succeeded&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, rows = table[0], table[1:]
    assert header[:4] == ["time (UTC)", "person", "provider", "model"]
    assert len(rows) == 4  # the failed one and the old one are filtered out
    people = {row[1] for row in rows}
    assert "'=HYPERLINK(1)" in people and "=HYPERLINK(1)" not in people
    assert any(row[-1] == "'@evil" for row in rows)
    costs = {row[header.index("cost USD")] for row in rows}
    assert "" in costs  # unknown stays unknown, not 0


QUERY_VALUES = st.text(max_size=30) | st.sampled_from(
    ["2026-02-30", "0001-01-01", "9999-12-31", "-1", "\x00", "csv", "failed", "openai"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(
        st.sampled_from(["person", "provider", "model", "outcome", "since", "until", "page"]),
        QUERY_VALUES,
        max_size=5,
    )
)
def test_whatever_the_query_holds_the_tab_answers_without_a_server_error(staff_client, query):
    expected = 400 if any("\x00" in value for value in query.values()) else 200  # lib.nul
    assert staff_client.get(URL, query).status_code == expected


@pytest.mark.parametrize(
    "amount, shown",
    [
        (None, "—"),
        (Decimal("0"), "$0.00"),
        (Decimal("0.0042"), "$0.0042"),
        (Decimal("0.01"), "$0.01"),
        (Decimal("1234.567"), "$1,234.57"),
    ],
)
def test_amounts_in_dollars(amount, shown):
    assert usd(amount) == shown


MINE = reverse("usage:mine")


def test_developers_see_their_own_calls_and_nobody_elses(
    developer_client, developer, other_developer, django_assert_max_num_queries
):
    call(user=developer, username="dev", model_identifier="gpt-5", cost_usd=Decimal("0.25"))
    call(user=other_developer, username="stranger", model_identifier="secret-model")
    # The session, user and token, the report's three and its charts' one, and the budgets
    # with their counters.
    with django_assert_max_num_queries(9):
        response = developer_client.get(MINE + "?person=stranger")  # not a filter here
    text = response.content.decode()
    assert response.status_code == 200 and 'aria-current="page">Usage</a>' in text
    assert response.context["totals"]["calls"] == 1 and "$0.25" in text
    assert "stranger" not in text and "secret-model" not in text
    assert 'name="person"' not in text and "By person" not in text
    export = developer_client.get(MINE + "?format=csv")
    rows = b"".join(export.streaming_content).decode()
    assert "gpt-5" in rows and "secret-model" not in rows
    assert 'filename="usage-dev.csv"' in export["Content-Disposition"]


def test_a_developer_without_calls_is_told_where_they_would_come_from(developer_client):
    text = developer_client.get(MINE).content.decode()
    assert "You made no calls through the AI Gateway in these days." in text


def test_an_export_for_a_name_outside_ascii_keeps_a_valid_header(client, django_user_model):
    person = django_user_model.objects.create_user(username="zoë.o'brien", password="pw-12345678")
    client.force_login(person)
    call(user=person, username=person.username)
    export = client.get(MINE + "?format=csv")
    disposition = export["Content-Disposition"]
    assert export.status_code == 200 and disposition.startswith("attachment; ")
    assert disposition.isascii() and "filename*=utf-8''usage-zo%C3%AB.o%27brien.csv" in disposition


def test_only_the_section_the_usage_page_belongs_to_is_current_in_the_top_bar(staff_client):
    admin = staff_client.get(URL).content.decode()
    assert '" aria-current="page">Admin</a>' in admin
    assert '" aria-current="page">Settings</a>' not in admin
    mine = staff_client.get("/settings/usage/").content.decode()
    assert '" aria-current="page">Settings</a>' in mine
    assert '" aria-current="page">Admin</a>' not in mine


def test_the_charts_show_cost_and_calls_per_day_from_the_daily_sums(staff_client):
    call(created_at=NOW - timedelta(days=1), cost_usd=Decimal("1.50"))
    call(provider_type="anthropic", model_identifier="claude", cost_usd=Decimal("2.25"))
    call(error_kind="upstream_error", status=503, cost_usd=None, input_tokens=0, output_tokens=0)
    html = staff_client.get(URL).content.decode()
    assert "Cost per day, by provider" in html and "Calls per day, succeeded and failed" in html
    assert html.count('<svg class="chart"') == 2
    assert "$2.25" in html and "Anthropic" in html  # in the table of numbers
    by_model = staff_client.get(URL + "?stack=model").content.decode()
    assert "Cost per day, by model" in by_model and "claude (Anthropic)" in by_model


def test_charts_without_calls_say_so(staff_client, developer_client):
    html = staff_client.get(URL + "?since=2020-01-01&until=2020-01-31").content.decode()
    assert '<svg class="chart"' not in html
    mine = developer_client.get(reverse("usage:mine")).content.decode()
    assert "Per day" not in mine or "Nothing in these days." in mine


@given(
    values=st.lists(
        st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False), max_size=40
    )
)
def test_a_chart_draws_any_values(values):
    from lib.charts import stacked

    days = [NOW.date() - timedelta(days=n) for n in range(len(values))][::-1]
    chart = stacked(
        "Cost", days, {(day, "x"): v for day, v in zip(days, values, strict=True)}, unit="$"
    )
    svg = chart.svg()
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "nan" not in svg.lower()
    assert len(chart.rows()) == len(days)
