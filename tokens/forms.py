from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from .services import validate_token_name

LIFETIMES = ((7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year"))


def lifetime_choices() -> list[tuple[int, str]]:
    allowed = [(d, label) for d, label in LIFETIMES if d <= settings.API_TOKEN_MAX_LIFETIME_DAYS]
    return allowed or [(settings.API_TOKEN_MAX_LIFETIME_DAYS, "the longest allowed")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="What will use it, e.g. “Claude Code on my laptop”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    lifetime_days = forms.TypedChoiceField(
        label="Expires after", coerce=int, choices=lifetime_choices, initial=30
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if 30 not in dict(lifetime_choices()):
            self.fields["lifetime_days"].initial = lifetime_choices()[-1][0]

    def clean_name(self) -> str:
        return validate_token_name(self.cleaned_data["name"])
