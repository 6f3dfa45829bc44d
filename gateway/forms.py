from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from providers.registry import ProviderType

DEFAULT_DAYS = 30


class Outcome:
    ANY, SUCCEEDED, FAILED = "", "succeeded", "failed"
    CHOICES = [(ANY, "Any"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]


class UsageFilterForm(forms.Form):
    """The Usage tab's filters, read from the query string. A filter that does not parse is
    shown with its error and left out; the others still apply."""

    person = forms.CharField(required=False, max_length=150)
    provider = forms.ChoiceField(required=False, choices=[("", "Any"), *ProviderType.choices])
    model = forms.CharField(required=False, max_length=255)
    outcome = forms.ChoiceField(required=False, choices=Outcome.CHOICES)
    since = forms.DateField(required=False, label="From")
    until = forms.DateField(required=False, label="To")

    @classmethod
    def from_query(cls, query: QueryDict, *, with_person: bool = True) -> UsageFilterForm:
        """Without a start day, the last ``DEFAULT_DAYS`` days (a usage table only grows)."""
        data = query.copy()
        for name in ("page", "format", *(() if with_person else ("person",))):
            data.pop(name, None)
        if "since" not in data:
            data["since"] = (timezone.now().date() - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        form = cls(data)
        if not with_person:
            del form.fields["person"]
        return form

    def valid(self) -> dict[str, Any]:
        """The filters that parsed."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value not in ("", None)}

    def apply(self, calls: Any) -> Any:
        """The filters that parsed, on calls or on their daily sums (the same methods)."""
        chosen = self.valid()
        since: date | None = chosen.get("since")
        until: date | None = chosen.get("until")
        calls = calls.on_days(since, until)
        if "person" in chosen:
            calls = calls.for_person(chosen["person"])
        if "provider" in chosen:
            calls = calls.for_provider(chosen["provider"])
        if "model" in chosen:
            calls = calls.for_model(chosen["model"])
        if chosen.get("outcome") == Outcome.SUCCEEDED:
            calls = calls.succeeded()
        elif chosen.get("outcome") == Outcome.FAILED:
            calls = calls.failed()
        return calls
