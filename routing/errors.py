"""Why a model call cannot be routed, each with a message a user can act on.

Views, the chat runner and the gateway show ``message`` as it is and use ``action`` to offer
the right next step (a link to Settings -> API Keys, "contact an administrator", sign in).
"""

from __future__ import annotations

from enum import StrEnum


class RouteAction(StrEnum):
    ADD_PERSONAL_KEY = "add_personal_key"
    CONTACT_ADMINISTRATOR = "contact_administrator"
    CHOOSE_ANOTHER_MODEL = "choose_another_model"
    SIGN_IN_AGAIN = "sign_in_again"


class RouteError(Exception):
    code: str = "route_error"
    action: RouteAction = RouteAction.CONTACT_ADMINISTRATOR

    def __init__(self, message: str, *, code: str | None = None, action: RouteAction | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if action is not None:
            self.action = action

    @property
    def user_can_fix(self) -> bool:
        return self.action in (RouteAction.ADD_PERSONAL_KEY, RouteAction.CHOOSE_ANOTHER_MODEL)


class ModelUnavailable(RouteError):
    """The model (or its provider) cannot be used by this user now."""


class OverrideUnusable(ModelUnavailable):
    """An admin-set purpose model is unusable for this user, and so is the fallback."""


class NoUsableModel(RouteError):
    code = "no_usable_model"


class NoActiveApiKey(RouteError):
    """Fail closed: a gateway call needs an active platform token of this very user."""

    action = RouteAction.SIGN_IN_AGAIN
