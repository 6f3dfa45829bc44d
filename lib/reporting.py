from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports never show a key: not the DEBUG page, not a mailed report, on any view.

    Django's filter is off while DEBUG is on (which a first-run ``make run`` sets) and hides
    frame variables only where ``@sensitive_variables`` says so. This one is always on, hides
    posted secrets on every view (the Django admin's too), every frame variable whose name
    looks secret (``raw_key``, ``api_key``, ``token``...), and any variable that holds a value
    posted in a secret field, whatever it is called.
    """

    hidden_post_parameters = ("api_key", "password", "password1", "password2", "new_password1")
    hidden_variable_names = re.compile(
        r"key|secret|token|passw|credential|authorization|cookie", re.IGNORECASE
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_post_parameters(self, request: Any) -> Any:
        params = super().get_post_parameters(request)
        if request is None or not params:
            return params
        params = params.copy()
        for name in params:
            if name in self.hidden_post_parameters or self.hidden_settings.search(name):
                params[name] = self.cleansed_substitute
        return params

    def _posted_secrets(self, request: Any) -> list[str]:
        post = getattr(request, "POST", None)
        if not post:
            return []
        return [
            value
            for name in post
            if name in self.hidden_post_parameters or self.hidden_settings.search(name)
            for value in post.getlist(name)
            if value and len(value) >= 4
        ]

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        secrets = self._posted_secrets(request)
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if self.hidden_variable_names.search(name) or (
                secrets and any(secret in _text_of(value) for secret in secrets)
            ):
                value = self.cleansed_substitute
            cleansed.append((name, value))
        return cleansed


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not break the error report
        return ""
