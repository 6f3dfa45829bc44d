from django import forms

from providers.validators import validate_api_key


class UserKeyForm(forms.Form):
    """Write-only: the field is never filled back in, not even after an error."""

    api_key = forms.CharField(
        label="API key",
        strip=False,
        validators=[validate_api_key],
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        error_messages={"required": "Paste your API key."},
    )
