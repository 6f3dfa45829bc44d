from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tokens.models import ApiToken

from .models import BUDGET_PERIODS, RATE_UNITS, Budget, Period, Scope, Unit

TARGET_FIELD = {Scope.GROUP: "group", Scope.PERSON: "user", Scope.TOKEN: "token"}


def _token_label(token: ApiToken) -> str:
    return f"{token.name} ({token.user.get_username()}) · {token.display_prefix}"


class TargetForm(forms.Form):
    """Whose calls a budget or rate limit counts: everyone's, a group's, a person's or a
    platform token's."""

    noun = "budget"
    scope = forms.ChoiceField(label="For", choices=Scope.choices, initial=Scope.PERSON)
    group = forms.ModelChoiceField(
        label="Group",
        queryset=Group.objects.order_by("name"),
        required=False,
        empty_label="Choose a group",
    )
    user = forms.ModelChoiceField(
        label="Person",
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        empty_label="Choose a person",
    )
    token = forms.ModelChoiceField(
        label="Platform token",
        queryset=ApiToken.objects.filter(revoked_at=None).select_related("user").order_by("name"),
        required=False,
        empty_label="Choose a token",
    )

    def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
        if budget is not None:
            kwargs.setdefault(
                "initial",
                {
                    "scope": budget.scope,
                    "group": budget.group,
                    "user": budget.user,
                    "token": budget.token,
                    **self.initial_of(budget),
                },
            )
        super().__init__(*args, **kwargs)
        self.budget = budget
        token: Any = self.fields["token"]
        token.label_from_instance = _token_label
        if budget is not None:  # whose calls it counts is fixed; the rest may change
            for name in ("scope", "group", "user", "token"):
                self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        for value, name in TARGET_FIELD.items():
            if scope == value and not data.get(name):
                what = str(self.fields[name].label).lower()
                self.add_error(name, f"Choose the {what} this {self.noun} is for.")
            elif scope != value:
                data[name] = None
        return data

    def target(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in ("group", "user", "token")}

    def initial_of(self, budget: Budget) -> dict[str, Any]:
        return {}


class BudgetForm(TargetForm):
    """Whose calls a budget counts, per what period, and how much."""

    period = forms.ChoiceField(
        choices=[(period.value, period.label) for period in BUDGET_PERIODS],
        initial=Period.MONTH,
        help_text="Periods are calendar days, weeks (from Monday) and months, in UTC.",
    )
    limit_usd = forms.DecimalField(
        label="Limit (USD)",
        min_value=0.01,
        max_value=1_000_000_000,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    hard = forms.BooleanField(
        label="Hard limit",
        required=False,
        initial=True,
        help_text=Budget._meta.get_field("hard").help_text,
    )

    def initial_of(self, budget: Budget) -> dict[str, Any]:
        return {"period": budget.period, "limit_usd": budget.limit_usd, "hard": budget.hard}


class RateLimitForm(TargetForm):
    """Whose calls a rate limit counts, in what, and how many."""

    noun = "limit"
    unit = forms.ChoiceField(
        label="Limit on",
        choices=[(unit.value, unit.label) for unit in RATE_UNITS],
        initial=Unit.REQUESTS,
        help_text="Minutes are calendar minutes (UTC). A group's limit counts its members' "
        "calls together; everyone's is the whole deployment's.",
    )
    limit_count = forms.IntegerField(
        label="Limit",
        min_value=1,
        max_value=1_000_000_000_000,
        widget=forms.NumberInput(attrs={"step": "1", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
        # Its fields' ids differ from the budget form's, on the same page.
        kwargs.setdefault("auto_id", "limit_%s")
        super().__init__(*args, budget=budget, **kwargs)
        if budget is not None:
            self.fields["unit"].disabled = True

    def initial_of(self, budget: Budget) -> dict[str, Any]:
        return {"unit": budget.unit, "limit_count": budget.limit_count}
