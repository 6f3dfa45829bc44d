"""A key policy in plain words: who can use the provider, and with which key.

The same sentences are shown on the provider card, rendered into the edit form for its live
explanation (static/js/policy.js picks one as the checkboxes change), and tested row by row
against the credential truth table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .models import KEY_POLICY_RULE, key_policy_is_valid

USES_CENTRAL = "uses the central key"
USES_OWN = "uses their own key"
CANNOT_USE = "cannot use this provider"


@dataclass(frozen=True)
class PolicyExplanation:
    summary: str
    # What happens to a developer with a personal key (None: personal keys are not allowed)...
    with_key: str | None
    # ...and to one without.
    without_key: str
    valid: bool = True

    def outcome(self, *, has_key: bool) -> str:
        return self.with_key if has_key and self.with_key else self.without_key


def explain_policy(*, central: bool, user: bool, fallback: bool) -> PolicyExplanation:
    if not key_policy_is_valid(central=central, user=user, fallback=fallback):
        return PolicyExplanation(KEY_POLICY_RULE, None, CANNOT_USE, valid=False)
    if not user:
        return PolicyExplanation(
            "Everyone uses the shared central key; developers cannot add their own.",
            None,
            USES_CENTRAL,
        )
    if not central:
        return PolicyExplanation(
            "Developers must bring their own key; without one they cannot use this provider.",
            USES_OWN,
            CANNOT_USE,
        )
    if not fallback:
        return PolicyExplanation(
            "Developers must bring their own key; the central key is not used.",
            USES_OWN,
            CANNOT_USE,
        )
    return PolicyExplanation(
        "Developers use their own key, or the shared central key when they have none.",
        USES_OWN,
        USES_CENTRAL,
    )


def central_key_unused(*, central: bool, user: bool, fallback: bool, key_stored: bool) -> str:
    """Why a stored central key is never used under this policy, or "" when it is used."""
    if not key_stored:
        return ""
    if not central:
        return "A central key is stored but not used: the central API key is off."
    if user and not fallback:
        return (
            "A central key is stored but not used: developers must use their own keys "
            "(turn on “Central key as fallback” to use it for those without one)."
        )
    return ""


def all_explanations(*, key_stored: bool) -> dict[str, Any]:
    """Every checkbox combination, keyed "central,user,fallback" as 0/1, for the live form."""
    table = {}
    for central in (False, True):
        for user in (False, True):
            for fallback in (False, True):
                flags = {"central": central, "user": user, "fallback": fallback}
                explanation = explain_policy(**flags)
                table[f"{int(central)}{int(user)}{int(fallback)}"] = {
                    **asdict(explanation),
                    "unused": central_key_unused(**flags, key_stored=key_stored),
                }
    return table
