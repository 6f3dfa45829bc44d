from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_date

from accounts.access import staff_required
from lib.export import csv_download

from .models import AuditAction, AuditEntry
from .presentation import rows, type_label


def _filtered(request: HttpRequest) -> tuple[Any, dict[str, Any]]:
    entries = AuditEntry.objects.all()
    filters: dict[str, Any] = {
        "actor": request.GET.get("actor", "").strip()[:150],
        "type": request.GET.get("type", ""),
        "action": request.GET.get("action", ""),
        "since": request.GET.get("since", ""),
        "until": request.GET.get("until", ""),
    }
    if filters["actor"]:
        entries = entries.filter(actor_label__iexact=filters["actor"])
    if filters["type"]:
        entries = entries.filter(object_type=filters["type"])
    if filters["action"] in AuditAction.values:
        entries = entries.filter(action=filters["action"])
    since, until = parse_day(filters["since"]), parse_day(filters["until"])
    if since:
        entries = entries.filter(created_at__gte=datetime.combine(since, time.min, UTC))
    if until:
        entries = entries.filter(created_at__lte=datetime.combine(until, time.max, UTC))
    return entries, filters


def parse_day(text: str) -> Any:
    try:
        return parse_date(text) if text else None
    except ValueError:
        return None


@staff_required
def audit_list(request: HttpRequest) -> HttpResponse:  # or a streamed CSV
    entries, filters = _filtered(request)
    if request.GET.get("format") == "csv":
        return _csv(request, entries)  # type: ignore[return-value]
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.rows = rows(entry)  # type: ignore[attr-defined]
        entry.type_label = type_label(entry.object_type)  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("page", None)
    types = AuditEntry.objects.order_by().values_list("object_type", flat=True).distinct()
    return render(
        request,
        "audit/audit_tab.html",
        {
            "page": page,
            "tab": "audit",
            "filters": filters,
            "query": query.urlencode(),
            "types": sorted((t, type_label(t)) for t in types if t),
            "actions": AuditAction.choices,
            "actors": sorted(
                AuditEntry.objects.order_by().values_list("actor_label", flat=True).distinct()
            ),
        },
    )


def _csv(request: HttpRequest, entries: Any) -> StreamingHttpResponse:
    def lines() -> Iterator[list[str]]:
        for entry in entries.iterator(chunk_size=500):
            when = entry.created_at.strftime("%Y-%m-%d %H:%M:%S")
            for field, old, new in rows(entry) or [("", "", "")]:
                yield [
                    when,
                    entry.actor_label,
                    entry.get_action_display(),
                    type_label(entry.object_type),
                    entry.object_repr,
                    field,
                    old,
                    new,
                ]

    header = ["time (UTC)", "who", "action", "type", "object", "field", "old", "new"]
    return csv_download(request, "audit-log.csv", header, lines())
