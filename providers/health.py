"""What the AI Gateway learned of a provider's central keys and models from its answers,
written where every worker and replica reads it with its next call. Each runs in a gateway
worker thread.

A key is named by its provider and slot: 0 for the provider's own key, else the id of the
further key. A write that finds the key gone or replaced (an admin acted meanwhile) changes
nothing: the new key starts afresh.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from audit.models import AuditAction
from audit.services import audit_record

from .models import Breaker, CentralKeyFields, Provider, ProviderKey

logger = logging.getLogger("gateway")
P = ParamSpec("P")
R = TypeVar("R")


def _in_a_gateway_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Each of these runs in a gateway worker thread: its database connection is closed
    when it returns (nothing else would close it)."""

    @functools.wraps(function)
    def closing(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return closing


def _keys(provider_id: int, slot: int, ciphertext: str) -> tuple[type[CentralKeyFields], Q]:
    """The model and the filter of the key in ``slot``, still holding ``ciphertext`` (the
    column compared as stored: the field itself cannot be queried)."""
    same_key = RawSQL("api_key = %s", [ciphertext], output_field=BooleanField())
    if slot == 0:
        return Provider, Q(same_key, pk=provider_id)
    return ProviderKey, Q(same_key, pk=slot, provider_id=provider_id)


@_in_a_gateway_thread
def key_rate_limited(
    provider_id: int, slot: int, ciphertext: str, until: float, error: str
) -> None:
    model, where = _keys(provider_id, slot, ciphertext)
    now = datetime.now(UTC)
    model._default_manager.filter(where).update(
        key_cooling_until=datetime.fromtimestamp(until, UTC),
        key_last_error=error[:300],
        key_last_error_at=now,
    )


@_in_a_gateway_thread
def key_refused(provider_id: int, slot: int, ciphertext: str, status: int, error: str) -> None:
    """Needs attention from now on; the first time, an audit entry says so."""
    model, where = _keys(provider_id, slot, ciphertext)
    now = datetime.now(UTC)
    attention = f"refused by the provider ({status}) at {now:%Y-%m-%d %H:%M} UTC"
    changed = (
        model._default_manager.filter(where)
        .filter(key_attention="")
        .update(key_attention=attention, key_last_error=error[:300], key_last_error_at=now)
    )
    if not changed:
        return
    key = model._default_manager.filter(where).first()
    if key is not None:
        _audit_attention(key, "active", attention)


@_in_a_gateway_thread
def key_failed(provider_id: int, slot: int, ciphertext: str, error: str) -> None:
    """A 5xx or a connection error: said on the card, the key stays active."""
    model, where = _keys(provider_id, slot, ciphertext)
    model._default_manager.filter(where).update(
        key_last_error=error[:300], key_last_error_at=datetime.now(UTC)
    )


@_in_a_gateway_thread
def key_recovered(provider_id: int, slot: int, ciphertext: str) -> None:
    """A key that needed attention answered a call: it is active again."""
    model, where = _keys(provider_id, slot, ciphertext)
    key = model._default_manager.filter(where).exclude(key_attention="").first()
    if key is None:
        return
    model._default_manager.filter(where).update(key_attention="")
    _audit_attention(key, "needs attention", "active (answered a call)")


def _audit_attention(key: CentralKeyFields, before: str, after: str) -> None:
    provider = key if isinstance(key, Provider) else key.provider  # type: ignore[attr-defined]
    audit_record(
        actor=None,
        actor_label="gateway",
        action=AuditAction.UPDATE,
        obj=key,
        object_repr=f"{provider} central key {key.key_label}",
        changed_fields=["key_attention"],
        changes={"key_attention": [before, after]},
    )


@_in_a_gateway_thread
def breaker_failed(
    provider_id: int,
    model: str,
    error: str,
    *,
    threshold: int,
    window: float,
    open_for: float,
    probing: bool,
    first_try: bool = True,
) -> None:
    """A call of ``model`` failed at the provider: counted in the window; at ``threshold``
    failures (or when it was the call trying again) the breaker opens for ``open_for``."""
    try:
        with transaction.atomic():
            now = datetime.now(UTC)
            breaker = (
                Breaker.objects.select_for_update(of=("self",))
                .select_related("provider")
                .filter(provider_id=provider_id, model_identifier=model)
                .first()
            )
            if breaker is None:
                breaker = Breaker(
                    provider_id=provider_id, model_identifier=model, window_started=now
                )
            if breaker.window_started < now - timedelta(seconds=window):
                breaker.failures, breaker.window_started = 0, now
            breaker.failures += 1
            breaker.last_error = error[:300]
            was_open = breaker.open_until is not None
            if probing or (not was_open and breaker.failures >= threshold):
                breaker.open_until = now + timedelta(seconds=open_for)
                breaker.opened_at = breaker.opened_at or now
                breaker.probe_until = None
            breaker.save()
    except IntegrityError:  # another process created the row a moment ago: count on it
        if first_try:
            breaker_failed(
                provider_id,
                model,
                error,
                threshold=threshold,
                window=window,
                open_for=open_for,
                probing=probing,
                first_try=False,
            )
        return
    if breaker.open_until is not None and not (was_open and not probing):
        logger.warning(
            "circuit for %s/%s opened (%s); calls fail at once until %s UTC, then one tries again",
            breaker.provider.type,
            model,
            "the call trying again failed"
            if probing
            else f"{breaker.failures} failures in {window:.0f} s",
            f"{breaker.open_until:%H:%M:%S}",
        )


@_in_a_gateway_thread
def breaker_claim_probe(provider_id: int, model: str, seconds: float) -> bool:
    """Whether this call is the one that tries the provider again (only one at a time)."""
    now = datetime.now(UTC)
    claimed = (
        Breaker.objects.filter(provider_id=provider_id, model_identifier=model, open_until__lte=now)
        .filter(Q(probe_until__isnull=True) | Q(probe_until__lt=now))
        .update(probe_until=now + timedelta(seconds=seconds))
    )
    return bool(claimed)


@_in_a_gateway_thread
def breaker_closed(provider_id: int, model: str) -> None:
    """The call trying again succeeded: the breaker closes."""
    deleted, _ = Breaker.objects.filter(
        provider_id=provider_id, model_identifier=model, open_until__isnull=False
    ).delete()
    if deleted:
        logger.warning("circuit for %s/%s closed: it answers again", provider_id, model)
