"""View as a user: what one person's model selector shows, and why each provider is or is not
in it. The same ``availability_for`` the selector uses, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from .availability import Availability, availability_for
from .credentials import Credential, CredentialSource, UnavailableReason

CANDIDATES_SHOWN = 200


@dataclass
class ProviderVerdict:
    label: str
    usable: bool
    why: str


@dataclass
class ViewAs:
    query: str = ""
    user: Any = None
    availability: Availability | None = None
    problem: str = ""
    verdicts: list[ProviderVerdict] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)


def view_as(request: Any) -> ViewAs:
    """From the ``as_user`` query parameter (a username or an email address)."""
    users = get_user_model()._default_manager
    result = ViewAs(
        query=request.GET.get("as_user", "").strip()[:254],
        candidates=list(
            users.filter(is_active=True)
            .order_by("username")
            .values_list("username", flat=True)[:CANDIDATES_SHOWN]
        ),
    )
    if not result.query:
        return result
    user = users.filter(Q(username__iexact=result.query) | Q(email__iexact=result.query)).first()
    if user is None:
        result.problem = f"Nobody is called “{result.query}”. Enter a username or an email address."
        return result
    result.user = user
    if not user.is_active:
        result.problem = f"{user.get_username()} is deactivated: they cannot use any model."
        return result
    result.availability = availability_for(user)
    result.verdicts = _verdicts(result.availability, user.get_username())
    return result


def _verdicts(availability: Availability, name: str) -> list[ProviderVerdict]:
    with_models = {group.provider.pk for group in availability.groups}
    verdicts = []
    for resolution in availability.resolutions.values():
        label = resolution.provider.label
        if isinstance(resolution, Credential):
            key = (
                f"{name}'s own key"
                if resolution.source is CredentialSource.USER
                else "the shared central key"
            )
            if resolution.provider.pk in with_models:
                verdicts.append(ProviderVerdict(label, True, f"Uses {key}."))
            else:
                verdicts.append(
                    ProviderVerdict(label, False, f"Would use {key}, but it has no enabled models.")
                )
        elif resolution.reason is UnavailableReason.USER_API_KEY_REQUIRED:
            why = (
                f"Needs {name}'s own key and they have not saved one (or it can no longer be "
                "decrypted). They can add it in Settings → API Keys."
            )
            verdicts.append(ProviderVerdict(label, False, why))
        else:
            why = "No usable central key is stored and personal keys are not allowed."
            verdicts.append(ProviderVerdict(label, False, why))
    return sorted(verdicts, key=lambda v: (not v.usable, v.label))
