"""What calls through the AI Gateway cost, per person and per model, and each call, over the
filtered days, with the calls as CSV: everyone's on the Admin dialog's Usage tab, one's own
on Settings → Usage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from accounts.access import staff_required
from lib.charts import StackedChart, stacked
from lib.export import csv_download
from providers.registry import REGISTRY, ProviderType
from spend.models import Budget
from spend.services import standings, standings_of

from .forms import UsageFilterForm
from .models import UsageDay, UsageRecord

SHOWN_PER_GROUP = 10
CSV_COLUMNS = [
    ("created_at", "time (UTC)"),
    ("username", "person"),
    ("provider_type", "provider"),
    ("model_identifier", "model"),
    ("endpoint", "endpoint"),
    ("streamed", "streamed"),
    ("credential_source", "credential"),
    ("key_label", "central key"),
    ("fallback_from", "fallback from"),
    ("route", "route"),
    ("status", "status"),
    ("error_kind", "error"),
    ("latency_ms", "latency ms"),
    ("ttfb_ms", "first byte ms"),
    ("input_tokens", "input tokens"),
    ("output_tokens", "output tokens"),
    ("cache_read_tokens", "cache read tokens"),
    ("cache_write_tokens", "cache write tokens"),
    ("web_searches", "web searches"),
    ("price_variants", "priced as"),
    ("cost_usd", "cost USD"),
    ("user_agent", "client"),
]


def provider_label(provider_type: str) -> str:
    try:
        return REGISTRY[ProviderType(provider_type)].label
    except ValueError:
        return provider_type


@staff_required
def usage_list(request: HttpRequest) -> HttpResponseBase:
    """Everyone's calls, for admins."""
    return _report(
        request,
        UsageRecord.objects.all(),
        UsageDay.objects.all(),
        "gateway/usage_tab.html",
        everyone=True,
        budget_alerts=[s for s in standings(Budget.objects.in_display_order()) if s.near or s.over],
    )


@login_required
def my_usage(request: HttpRequest) -> HttpResponseBase:
    """The signed-in person's own calls, and nobody else's."""
    mine = UsageRecord.objects.filter(user_id=request.user.pk)  # type: ignore[misc]
    my_days = UsageDay.objects.filter(user_id=request.user.pk)  # type: ignore[misc]
    budgets = {
        "budgets": standings_of(request.user),
        "rate_limits": standings_of(request.user, rate_limits=True),
        "count_personal_keys": settings.BUDGETS_COUNT_PERSONAL_KEYS,
    }
    return _report(request, mine, my_days, "gateway/my_usage.html", everyone=False, **budgets)


def _report(
    request: HttpRequest,
    base: Any,
    day_base: Any,
    template: str,
    *,
    everyone: bool,
    **extra: Any,
) -> HttpResponseBase:
    """The sums from the daily sums (``day_base``), each call from the calls (``base``)."""
    form = UsageFilterForm.from_query(request.GET, with_person=everyone)
    calls = form.apply(base)
    if request.GET.get("format") == "csv":
        filename = "usage.csv" if everyone else f"usage-{request.user.get_username()}.csv"
        return _csv(request, calls, filename)
    chosen = form.valid()
    summed = form.apply(day_base)
    days = day_base.on_days(chosen.get("since"), chosen.get("until"))
    people = summed.grouped_by("username") if everyone else []
    models = summed.grouped_by("provider_type", "model_identifier")
    only_days = chosen.keys() <= {"since", "until"}
    for group in models:
        group["provider_label"] = provider_label(group["provider_type"])
    totals = summed.totals()
    paginator = Paginator(calls, 50)
    paginator.count = totals["calls"]  # type: ignore[misc]  # counted with the sums already
    page = paginator.get_page(request.GET.get("page"))
    for call in page.object_list:
        call.provider_label = provider_label(call.provider_type)  # type: ignore[attr-defined]
    context = {
        # The one section of the top bar the page belongs to: Admin, or the person's Settings.
        "tab" if everyone else "settings_tab": "usage",
        "everyone": everyone,
        "form": form,
        "totals": totals,
        "people": people[:SHOWN_PER_GROUP],
        "more_people": max(0, len(people) - SHOWN_PER_GROUP),
        "models": models[:SHOWN_PER_GROUP],
        "more_models": max(0, len(models) - SHOWN_PER_GROUP),
        "page": page,
        "charts": _charts(summed, chosen, by_model=request.GET.get("stack") == "model"),
        "stack": "model" if request.GET.get("stack") == "model" else "provider",
        "query": urlencode(dict(form.data.items())),
        "model_choices": _choices(
            days, models if only_days else None, "model_identifier", form.data.get("model", "")
        ),
        **extra,
    }
    if everyone:
        context["person_choices"] = _choices(
            days, people if only_days else None, "username", form.data.get("person", "")
        )
    return render(request, template, context)


CHART_DAYS = 92


def _charts(summed: Any, chosen: dict[str, Any], *, by_model: bool) -> list[StackedChart]:
    """Cost per day (by provider or model) and calls per day (succeeded, failed), from the
    daily sums in one query: as fast at millions of calls as at a hundred."""
    label = ("provider_type", "model_identifier") if by_model else ("provider_type",)
    found = list(
        summed.order_by()
        .values("day", *label, "is_failure")
        .annotate(cost=Sum("cost_usd", filter=Q(priced_calls__gt=0)), calls=Sum("call_count"))
    )
    until = chosen.get("until") or timezone.now().date()
    since = chosen.get("since") or min((row["day"] for row in found), default=until)
    since = max(since, date.fromordinal(max(1, until.toordinal() - CHART_DAYS + 1)))
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    costs: dict[tuple[date, str], float] = defaultdict(float)
    calls: dict[tuple[date, str], float] = defaultdict(float)
    for row in found:
        name = (
            f"{row['model_identifier'] or '(none)'} ({provider_label(row['provider_type'])})"
            if by_model
            else provider_label(row["provider_type"])
        )
        costs[(row["day"], name)] += float(row["cost"] or 0)
        calls[(row["day"], "failed" if row["is_failure"] else "succeeded")] += row["calls"]
    cost_chart = stacked(
        f"Cost per day, by {'model' if by_model else 'provider'}", days, costs, unit="$"
    )
    call_chart = stacked("Calls per day, succeeded and failed", days, calls)
    for series in call_chart.series:
        series.colour = "#1f9d74" if series.label == "succeeded" else "#d14b6b"
    return [cost_chart, call_chart]


def _choices(days: Any, groups: list[dict[str, Any]] | None, field: str, chosen: str) -> list[str]:
    """The values seen in the chosen days, and the chosen one even if it is not among them;
    read from ``groups`` when they cover the same days with no other filter."""
    if groups is not None:
        values = {group[field] for group in groups}
    else:
        values = set(days.order_by().values_list(field, flat=True).distinct())
    if chosen:
        values.add(chosen)
    return sorted(value for value in values if value)


def _csv(request: HttpRequest, calls: Any, filename: str) -> StreamingHttpResponse:
    fields = [field for field, _ in CSV_COLUMNS]

    def lines() -> Iterator[list[Any]]:
        for row in calls.values_list(*fields).iterator(chunk_size=2000):
            when, *rest = row
            yield [when.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest]

    header = [label for _, label in CSV_COLUMNS]
    return csv_download(request, filename, header, lines())


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: 404 while metrics are off; 401 without the token (or an allowed
    address)."""
    from .metrics import enabled, may_scrape, scrape

    if not enabled():
        raise Http404("Metrics are off on this deployment.")
    if not may_scrape(
        request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", "")
    ):
        response = HttpResponse(
            "Send the metrics token (Authorization: Bearer …), or scrape from an address in "
            "METRICS_ALLOWED_IPS.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(scrape(), content_type="text/plain; version=0.0.4; charset=utf-8")
