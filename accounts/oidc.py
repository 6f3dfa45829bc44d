"""Single sign-on with OpenID Connect, on mozilla-django-oidc.

Configured from the environment (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET...). The
provider's endpoints come from its discovery document. On top of the library's state, nonce
and PKCE checks, the ID token's issuer and audience are checked, a sign-in links to an
existing account only through a verified e-mail address, and groups (and the admin role)
follow the provider's claims on every sign-in when a mapping is set.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.models import AuditAction
from audit.services import audit_record

from .services import groups_sync

logger = logging.getLogger(__name__)

DISCOVERY_TTL = 3600
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, Any] = {}


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_RP_CLIENT_ID)


def discovery() -> dict[str, Any]:
    """The provider's discovery document (cached an hour; it describes the provider)."""
    cached = _discovered.get(settings.OIDC_ISSUER)
    if cached and time.monotonic() - cached["at"] < DISCOVERY_TTL:
        return cached["document"]
    url = settings.OIDC_ISSUER.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise ImproperlyConfigured(f"cannot read the OpenID discovery document at {url}") from error
    if document.get("issuer", "").rstrip("/") != settings.OIDC_ISSUER.rstrip("/"):
        raise ImproperlyConfigured("the discovery document names another issuer")
    _discovered[settings.OIDC_ISSUER] = {"at": time.monotonic(), "document": document}
    return document


def oidc_setting(attr: str, *args: Any) -> Any:
    if attr in ENDPOINTS:
        return discovery()[ENDPOINTS[attr]]
    if hasattr(settings, attr):
        return getattr(settings, attr)
    if args:
        return args[0]
    raise ImproperlyConfigured(f"setting {attr} not found")


class SignInView(OIDCAuthenticationRequestView):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The provider's endpoint is read when a sign-in starts, not when the view is built.
        View.__init__(self, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT")
            self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        except ImproperlyConfigured:
            logger.warning("single sign-on: the identity provider cannot be reached")
            return HttpResponseRedirect("/login/?sso=failed")
        return super().get(request)


class CallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(oidc_setting)

    @property
    def failure_url(self) -> str:
        return "/login/?sso=failed"

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except (SuspiciousOperation, ImproperlyConfigured, requests.RequestException) as error:
            logger.warning("single sign-on refused: %s", type(error).__name__)
            return HttpResponseRedirect(self.failure_url)


class Backend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds every backend for every sign-in, password ones included: read the
        # provider's endpoints only when a single sign-on callback needs them.
        from django.contrib.auth import get_user_model

        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:  # (the library's attribute names)
        return oidc_setting("OIDC_OP_TOKEN_ENDPOINT")

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return oidc_setting("OIDC_OP_USER_ENDPOINT")

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return oidc_setting("OIDC_OP_JWKS_ENDPOINT")

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        # The library leaves these out: the token must be from our issuer, for our client.
        if payload.get("iss", "").rstrip("/") != settings.OIDC_ISSUER.rstrip("/"):
            raise SuspiciousOperation("ID token from another issuer")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        if payload.get("exp", 0) < time.time():
            raise SuspiciousOperation("ID token expired")
        return payload

    def get_payload_data(self, token: bytes, key: Any) -> Any:
        try:
            return super().get_payload_data(token, key)
        except jwt.PyJWTError as error:
            raise SuspiciousOperation("ID token signature not valid") from error

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        email = str(claims.get("email") or "")
        if not email or not claims.get("sub"):
            return False
        domains = settings.OIDC_ALLOWED_EMAIL_DOMAINS
        if domains and email.rsplit("@", 1)[-1].lower() not in domains:
            logger.warning("single sign-on refused: e-mail domain not allowed")
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        # Only a verified address may attach a sign-in to an existing account.
        if claims.get("email_verified") is not True:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=claims["email"])

    def get_username(self, claims: dict[str, Any]) -> str:
        base = (
            re.sub(
                r"[^\w.@+-]",
                "",
                str(claims.get("preferred_username") or claims["email"].split("@")[0]),
            )[:140]
            or "user"
        )
        username, n = base, 1
        while self.UserModel.objects.filter(username__iexact=username).exists():
            n += 1
            username = f"{base}{n}"
        return username

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> Any:
        if self.UserModel.objects.filter(email__iexact=claims["email"]).exists():
            # The address is taken and not verified by the provider: no new twin account.
            raise SuspiciousOperation("unverified e-mail of an existing account")
        user = self.UserModel.objects.create_user(self.get_username(claims), email=claims["email"])
        user.first_name = str(claims.get("given_name") or "")[:150]
        user.last_name = str(claims.get("family_name") or "")[:150]
        user.save()
        audit_record(
            actor=user,
            action=AuditAction.CREATE,
            obj=user,
            object_repr=f"{user.get_username()} (single sign-on)",
            changes={
                "username": [None, user.get_username()],
                "email": [None, user.email or None],
            },
        )
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        claim = settings.OIDC_GROUPS_CLAIM
        if claim:
            names = claims.get(claim) or []
            names = [names] if isinstance(names, str) else [str(n) for n in names]
            groups_sync(user=user, names=names)
            if settings.OIDC_ADMIN_GROUPS:
                admin = bool(set(names) & set(settings.OIDC_ADMIN_GROUPS))
                if user.is_staff != admin:
                    from .services import user_set_role

                    try:
                        user_set_role(user=user, role="admin" if admin else "developer", actor=user)
                    except Exception:  # the last admin keeps the role
                        logger.warning("single sign-on: admin role of the last admin kept")
                    user.refresh_from_db()
        return user

    def get_or_create_user(self, access_token: str, id_token: str, payload: Any) -> Any:
        user = super().get_or_create_user(access_token, id_token, payload)
        if user is not None and not user.is_active:
            return None  # deactivated people stay out, whatever their provider says
        return user
