"""Creating, using and revoking platform API tokens. The secret is returned once, never kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from lib.text import validate_plain_text

from .models import ApiToken, TokenKind
from .token_format import generate_token, hash_token, lookup_id_of, token_matches

logger = logging.getLogger(__name__)

SESSION_TOKEN_KEY = "llmcp_api_token_id"
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class NewToken:
    """A token just created: the only moment its secret exists outside the client."""

    token: ApiToken
    secret: str

    def __repr__(self) -> str:
        return f"NewToken(token={self.token!r}, secret='********')"

    __str__ = __repr__


def max_lifetime() -> timedelta:
    return timedelta(days=settings.API_TOKEN_MAX_LIFETIME_DAYS)


def validate_token_name(name: str) -> str:
    name = validate_plain_text(name, what="The name").strip()
    if not name:
        raise ValidationError("Give the token a name, e.g. the tool that will use it.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"The name is longer than {MAX_NAME_LENGTH} characters.")
    return name


def validate_lifetime(days: int) -> timedelta:
    if days < 1:
        raise ValidationError("A token must be valid for at least one day.")
    if days > settings.API_TOKEN_MAX_LIFETIME_DAYS:
        raise ValidationError(
            f"A token can be valid for at most {settings.API_TOKEN_MAX_LIFETIME_DAYS} days."
        )
    return timedelta(days=days)


@transaction.atomic
def token_create(
    *,
    user: Any,
    name: str,
    actor: Any,
    kind: TokenKind = TokenKind.API,
    lifetime: timedelta | None = None,
    expires_at: datetime | None = None,
    client_label: str = "",
    last_used_at: datetime | None = None,
) -> NewToken:
    """Create a token; ``lifetime`` (API tokens) or ``expires_at`` (sessions) bounds it."""
    if not user.is_active:
        raise ValidationError("Deactivated users cannot create tokens.")
    if kind == TokenKind.API:
        name = validate_token_name(name)
        lifetime = lifetime or max_lifetime()
        if lifetime > max_lifetime():
            raise ValidationError(
                f"A token can be valid for at most {settings.API_TOKEN_MAX_LIFETIME_DAYS} days."
            )
        expires_at = timezone.now() + lifetime
    for _attempt in range(3):
        lookup_id, secret = generate_token()
        token = ApiToken(
            user=user,
            name=name[:MAX_NAME_LENGTH],
            kind=kind,
            lookup_id=lookup_id,
            secret_hash=hash_token(secret),
            client_label=client_label[:200],
            expires_at=expires_at,
            last_used_at=last_used_at,
        )
        try:
            with transaction.atomic():
                token.save()
        except IntegrityError as error:
            if "lookup_id" in str(error) or "tokens_apitoken.lookup_id" in str(error):
                continue  # a lookup id collision: draw again
            raise ValidationError(
                {"name": "You already have an active token with this name."}
            ) from None
        break
    else:  # pragma: no cover - three collisions in a 36^8 space
        raise RuntimeError("could not draw a unique token id")
    if kind == TokenKind.API:
        audit_record(
            actor=actor,
            action=AuditAction.CREATE,
            obj=token,
            changes={
                "name": [None, token.name],
                "expires": [None, token.expires_at.strftime("%Y-%m-%d %H:%M UTC")]
                if token.expires_at
                else [None, "never"],
            },
        )
    return NewToken(token=token, secret=secret)


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Any) -> bool:
    """Revoke ``token``; False when it was already revoked. Effective on the next request."""
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        return False
    token.refresh_from_db(fields=["revoked_at"])
    if token.kind == TokenKind.API or getattr(actor, "pk", None) != token.user_id:
        audit_record(
            actor=actor,
            action=AuditAction.REVOKE,
            obj=token,
            object_repr=f"{token} of {token.user}",
        )
    return True


@transaction.atomic
def tokens_revoke_for_user(
    *, user: Any, actor: Any, kind: TokenKind | None = None, keep: ApiToken | None = None
) -> int:
    """Revoke every active token of ``user`` (of ``kind`` only, if given), except ``keep``."""
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if kind is not None:
        tokens = tokens.filter(kind=kind)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    count = tokens.update(revoked_at=timezone.now())
    if count:
        audit_record(
            actor=actor,
            action=AuditAction.REVOKE,
            obj=user,
            object_repr=f"{count} {kind.label.lower() + 's' if kind else 'tokens'} of {user}",
        )
    return count


def authenticate_token(raw: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token ``raw`` is, or None. One query; never logs ``raw``."""
    lookup_id = lookup_id_of(raw.strip())
    if lookup_id is None:
        return None
    token = ApiToken.objects.select_related("user").filter(lookup_id=lookup_id).first()
    if token is None or not token_matches(raw.strip(), token.secret_hash):
        return None
    if token.inactive_reason(now) is not None:
        return None
    return token


def token_touch(token: ApiToken, *, now: datetime | None = None) -> None:
    """Record use at most once a minute per token, whatever the number of processes."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_PRECISION:
        return
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION),
        pk=token.pk,
    ).update(last_used_at=now)
    token.last_used_at = now


def client_label_for(request: HttpRequest) -> str:
    agent = request.headers.get("User-Agent", "")
    browser = next(
        (name for name in ("Edg", "Firefox", "Chrome", "Safari") if name in agent), "Browser"
    )
    system = next(
        (
            name
            for name in ("Windows", "Android", "iPhone", "Mac OS", "Linux", "CrOS")
            if name in agent
        ),
        "",
    )
    browser = {"Edg": "Edge", "Mac OS": "macOS"}.get(browser, browser)
    system = {"Mac OS": "macOS", "CrOS": "ChromeOS"}.get(system, system)
    address = request.META.get("REMOTE_ADDR", "")
    parts = [f"{browser} on {system}" if system else browser, address]
    return " · ".join(p for p in parts if p)


def session_token_start(request: HttpRequest, user: Any) -> ApiToken:
    """A browser session gets its own token, ending when the session ends."""
    new = token_create(
        user=user,
        name="Browser session",
        actor=user,
        kind=TokenKind.SESSION,
        expires_at=request.session.get_expiry_date(),
        client_label=client_label_for(request),
        last_used_at=timezone.now(),  # signing in is a use
    )
    request.session[SESSION_TOKEN_KEY] = new.token.pk
    return new.token


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.api_token = session_token_start(request, user)  # type: ignore[attr-defined]


def on_user_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    token_id = request.session.get(SESSION_TOKEN_KEY)
    if token_id is not None:
        ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
