from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group

from . import oidc
from .models import Role


def password_sign_in_allowed(username: str) -> bool:
    if settings.PASSWORD_SIGN_IN != "break_glass":
        return True
    return username in settings.BREAK_GLASS_USERS


class PasswordRule:
    """With single sign-on enforced, only break-glass accounts may use a password."""

    def clean(self) -> Any:
        username = self.data.get("username", "")  # type: ignore[attr-defined]
        if not password_sign_in_allowed(username):
            name = settings.OIDC_PROVIDER_NAME if oidc.enabled() else "single sign-on"
            raise forms.ValidationError(
                f"Password sign-in is turned off here. Sign in with {name}.",
                code="password_off",
            )
        return super().clean()  # type: ignore[misc]


class SignInForm(PasswordRule, AuthenticationForm):
    pass


class AdminSignInForm(PasswordRule, AdminAuthenticationForm):
    pass


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", required=False)
    username = forms.CharField(
        label="Username",
        required=False,
        max_length=150,
        help_text="Optional: they can choose one when they accept.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.all(), required=False)
    days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=30, initial=7)
    send_email = forms.BooleanField(label="Send the link by e-mail", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("email") and not data.get("username"):
            raise forms.ValidationError("Give an e-mail address or a username.")
        if data.get("send_email") and not data.get("email"):
            self.add_error("send_email", "An e-mail needs an e-mail address.")
        return data


class AcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class GroupForm(forms.Form):
    name = forms.CharField(label="Group name", max_length=150)
