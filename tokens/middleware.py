"""Every signed-in request carries the platform token it is attributed to (``request.api_token``).

A browser session is only as valid as its session token: revoking it (sign out everywhere, an
admin's revoke, a deactivation) signs that browser out on its next request. Tools may instead
send ``Authorization: Bearer <token>``, to the JSON endpoints the access table names
(``PLATFORM_TOKEN_URL_NAMES``) and nowhere else: a token is not a browser sign-in, so every
page, form and the Django admin ignore it and keep asking for a session and its CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from .models import ApiToken
from .services import SESSION_TOKEN_KEY, authenticate_token, session_token_start, token_touch


class ApiTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.api_token = None  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            self._check_session(request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        match = request.resolver_match
        if (
            match is not None
            and match.view_name in settings.PLATFORM_TOKEN_URL_NAMES
            and not request.user.is_authenticated
        ):
            self._authenticate_bearer(request)

    def _check_session(self, request: HttpRequest) -> None:
        token_id = request.session.get(SESSION_TOKEN_KEY)
        if token_id is None:
            # A session from before tokens existed: give it one rather than sign it out.
            request.api_token = session_token_start(request, request.user)  # type: ignore[attr-defined]
            return
        token = ApiToken.objects.filter(pk=token_id, user_id=request.user.pk).first()  # type: ignore[misc]
        if token is not None:
            token.user = request.user  # type: ignore[assignment]
        if token is None or token.inactive_reason() is not None:
            logout(request)
            return
        token_touch(token)
        request.api_token = token  # type: ignore[attr-defined]

    def _authenticate_bearer(self, request: HttpRequest) -> None:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw:
            return
        token = authenticate_token(raw)
        if token is None:
            return
        token_touch(token)
        request.user = token.user
        request.api_token = token  # type: ignore[attr-defined]
