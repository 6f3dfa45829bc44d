"""Sign-in throttling: django-axes, with the account a failure was for named safely and a
success clearing only its own failures."""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum

from lib.text import BIDI_CONTROLS

MAX_USERNAME = 150  # Django's own limit; what was typed beyond it names no account


def username_for_throttling(request: Any, credentials: dict[str, Any] | None = None) -> str:
    """The typed username, as something the attempts table can store and compare: NUL bytes
    and control characters dropped (PostgreSQL refuses NUL) and cut to Django's length."""
    if credentials and credentials.get("username") is not None:
        raw = credentials.get("username")
    else:
        raw = getattr(request, "POST", {}).get("username", "")
    text = str(raw or "")
    text = "".join(ch for ch in text if ch.isprintable() and ch not in BIDI_CONTROLS)
    return text[:MAX_USERNAME]


LOCKOUT_BY_ACCOUNT_AND_ADDRESS = "account_and_address"


class SignInThrottle(AxesDatabaseHandler):
    """django-axes' database handler, with two of its rules changed.

    - A successful sign-in clears only the failures of that account from that address. The
      stock handler clears every failure matching any lockout parameter, so a correct
      password for any account wiped the address's failures against every other account:
      four guesses at the admin, a sign-in as oneself, and again, without end.
    - With ``SIGN_IN_LOCKOUT=account_and_address`` an account is locked only for the
      address that failed (so nobody can lock someone else out from elsewhere), and an
      address for every account only past a higher limit of its own
      (``SIGN_IN_ADDRESS_FAILURE_LIMIT``).
    """

    def reset_user_attempts(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        username = username_for_throttling(request, credentials)
        count, _ = AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address
        ).delete()
        return count

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        if settings.SIGN_IN_LOCKOUT != LOCKOUT_BY_ACCOUNT_AND_ADDRESS:
            return super().get_failures(request, credentials)
        pair, address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if address >= settings.SIGN_IN_ADDRESS_FAILURE_LIMIT:
            return max(pair, get_failure_limit(request, credentials))
        return pair
