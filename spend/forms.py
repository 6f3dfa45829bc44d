from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tokens.models import ApiToken

from .models import Budget, Period, Scope

TARGET_FIELD = {Scope.GROUP: "group", Scope.PERSON: "user", Scope.TOKEN: "token"}


def _token_label(token: ApiToken) -> str:
    return f"{token.name} ({token.user.get_username()}) · {token.display_prefix}"


class BudgetForm(forms.Form):
    """Whose calls a budget counts, per what period, and how much."""

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
    period = forms.ChoiceField(
        choices=Period.choices,
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

    def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
        if budget is not None:
            kwargs.setdefault(
                "initial",
                {
                    "scope": budget.scope,
                    "group": budget.group,
                    "user": budget.user,
                    "token": budget.token,
                    "period": budget.period,
                    "limit_usd": budget.limit_usd,
                    "hard": budget.hard,
                },
            )
        super().__init__(*args, **kwargs)
        self.budget = budget
        token: Any = self.fields["token"]
        token.label_from_instance = _token_label
        if budget is not None:  # what a budget counts is fixed; its period and limit change
            for name in ("scope", "group", "user", "token"):
                self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        for value, name in TARGET_FIELD.items():
            if scope == value and not data.get(name):
                what = str(self.fields[name].label).lower()
                self.add_error(name, f"Choose the {what} this budget is for.")
            elif scope != value:
                data[name] = None
        return data

    def target(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in ("group", "user", "token")}
