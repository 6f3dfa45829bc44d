"""Template helpers: the error summary that links to each field with a problem, the pager
of a filtered list, and amounts in US dollars."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms, template
from django.core.exceptions import NON_FIELD_ERRORS

register = template.Library()


@dataclass(frozen=True)
class ErrorLink:
    target: str  # the id of the field's input ("" for a form-wide error)
    label: str
    message: str


def error_links(*items: forms.BaseForm | Iterable[forms.BaseForm] | None) -> list[ErrorLink]:
    links: list[ErrorLink] = []
    for item in items:
        if item is None:
            continue
        for form in [item] if isinstance(item, forms.BaseForm) else item:
            if not form.is_bound:
                continue
            for name, messages in form.errors.items():
                if name == NON_FIELD_ERRORS:
                    links.extend(ErrorLink("", "", str(m)) for m in messages)
                    continue
                field = form[name] if name in form.fields else None
                target = field.id_for_label if field is not None else ""
                label = str(field.label) if field is not None else name
                links.extend(ErrorLink(target or "", label, str(m)) for m in messages)
    return links


@register.inclusion_tag("includes/error_summary.html")
def error_summary(*items: Any, minimum: int = 2) -> dict[str, Any]:
    """A summary at the top of a form once it has ``minimum`` problems or more."""
    links = error_links(*items)
    return {"links": links if len(links) >= minimum else []}


@register.inclusion_tag("includes/pager.html", takes_context=True)
def pager(
    context: template.Context, page: Any, previous: str = "Previous", next: str = "Next"
) -> dict[str, Any]:
    """Previous / next links for a paginated list that keep the list's filters."""
    query = context["request"].GET.copy()
    query.pop("page", None)

    def link(number: int) -> str:
        query["page"] = str(number)
        return "?" + query.urlencode()

    return {
        "page": page,
        "previous": previous,
        "next": next,
        "previous_url": link(page.previous_page_number()) if page.has_previous() else "",
        "next_url": link(page.next_page_number()) if page.has_next() else "",
    }


@register.filter
def usd(value: Decimal | None) -> str:
    """$1,234.57; an amount under a cent keeps four places ($0.0042); unknown is a dash."""
    if value is None:
        return "—"
    if 0 < abs(value) < Decimal("0.01"):
        return f"${value:.4f}"
    return f"${value:,.2f}"
