from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .models import KeyState, Provider
from .policy import PolicyExplanation, all_explanations, central_key_unused, explain_policy
from .services import KEY_UNCHANGED
from .validators import validate_api_key

POLICY_FIELDS = ("central_key_enabled", "user_keys_allowed", "central_key_fallback")


class ProviderForm(forms.ModelForm):
    """Edits one provider. The key is write-only: blank means unchanged, never prefilled."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )
    clear_api_key = forms.BooleanField(label="Clear the stored key", required=False)
    # The Providers tab edits one known type; the Django admin's add form picks the type.
    only_fields_of_its_type = True

    class Meta:
        model = Provider
        fields: tuple[str, ...] = ("base_url", "region", "enabled", *POLICY_FIELDS)
        widgets = {"base_url": forms.URLInput(attrs={"spellcheck": "false"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        instance = kwargs.get("instance")
        if instance is not None and instance.type:
            # Several cards can be open at once: their fields need distinct ids.
            kwargs.setdefault("auto_id", f"{instance.type}-%s")
        super().__init__(*args, **kwargs)
        # Decided before cleaning, which applies the typed key to the instance.
        self.key_is_stored = self.instance.key_state != KeyState.NOT_SET
        if self.instance.type:
            spec = self.instance.spec
            self.fields["base_url"].widget.attrs["placeholder"] = (
                spec.default_base_url or spec.base_url_example
            )
            self.fields["base_url"].help_text = (
                f"Optional. Leave blank to use {spec.default_base_url}."
                if spec.default_base_url
                else f"Required: {spec.label} has no default endpoint."
            )
        if self.only_fields_of_its_type and not (
            self.instance.type and self.instance.spec.uses_region
        ):
            del self.fields["region"]
        self.fields["api_key"].widget.attrs["placeholder"] = (
            "Leave blank to keep the stored key" if self.key_is_stored else "Paste the API key"
        )

    def _policy_flags(self) -> dict[str, bool]:
        central, user, fallback = (bool(self[name].value()) for name in POLICY_FIELDS)
        return {"central": central, "user": user, "fallback": fallback}

    @property
    def policy(self) -> PolicyExplanation:
        """What the checkboxes as shown mean (the live script updates it as they change)."""
        return explain_policy(**self._policy_flags())

    @property
    def central_key_unused(self) -> str:
        return central_key_unused(**self._policy_flags(), key_stored=self.key_is_stored)

    @property
    def policy_table(self) -> dict[str, Any]:
        return all_explanations(key_stored=self.key_is_stored)

    @property
    def policy_table_id(self) -> str:
        return f"policy-table-{self.instance.type}"

    @property
    def typed_key_was_dropped(self) -> bool:
        """A key was typed but the form had errors: it is not echoed back, so say so."""
        return self.is_bound and bool(self.data.get("api_key")) and bool(self.errors)

    def clean_api_key(self) -> str:
        raw: str = self.cleaned_data.get("api_key") or ""
        if raw:
            validate_api_key(raw)
        return raw

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.key_is_stored:
            data["clear_api_key"] = False
        elif data.get("api_key") and data.get("clear_api_key"):
            self.add_error("clear_api_key", "Either enter a new key or clear it, not both.")
        change = self.key_change()
        if change is not KEY_UNCHANGED:
            # So the model's clean() judges the key the admin is about to save.
            self.instance.set_key(change)  # type: ignore[arg-type]
        return data

    def key_change(self) -> Any:
        """A new raw key, None to clear the stored one, or KEY_UNCHANGED."""
        if self.cleaned_data.get("api_key"):
            return self.cleaned_data["api_key"]
        if self.cleaned_data.get("clear_api_key"):
            return None
        return KEY_UNCHANGED

    def changes(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name]
            for name in ProviderForm.Meta.fields
            if name in self.fields
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Attach errors the service found (e.g. a concurrent change) to the right fields."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for field, messages in error.message_dict.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)


class CentralKeyForm(forms.Form):
    """A further central key for a provider: a label and the key, write-only."""

    key_label = forms.CharField(
        label="Label",
        max_length=40,
        help_text="A name for the key (e.g. team-a, backup): usage rows say which key served.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    api_key = forms.CharField(
        label="API key",
        strip=False,
        widget=forms.PasswordInput(
            render_value=False,
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "Paste the key"},
        ),
    )

    def __init__(self, *args: Any, provider_type: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{provider_type}-newkey-%s")
        super().__init__(*args, **kwargs)

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)
