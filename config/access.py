"""Who may open each URL of the project, by URL name: the one access table.

A platform token (``Authorization: Bearer``) is for the AI Gateway and the JSON endpoints
marked ``SESSION_OR_TOKEN`` below, nothing else: every page, form and the Django admin take a
browser session, with a CSRF token on every POST. ``tokens.middleware`` reads the token only
on the views named here; a test walks every URL pattern with a session, a token and no
credential and compares what each gets with this table, so a new view must be added here.
"""

from __future__ import annotations

from enum import StrEnum


class Access(StrEnum):
    PUBLIC = "anyone"
    SESSION = "a signed-in browser"
    ADMIN = "a signed-in admin's browser"
    SESSION_OR_TOKEN = "a signed-in browser, or a platform token"


URL_ACCESS: dict[str, Access] = {
    # Signing in and out, invitations, the load balancer's probe.
    "login": Access.PUBLIC,
    "logout": Access.PUBLIC,
    "healthz": Access.PUBLIC,
    # Its own check: the metrics token, or an allowed address (404 while metrics are off).
    "usage:metrics": Access.PUBLIC,
    "oidc_authentication_init": Access.PUBLIC,
    "oidc_authentication_callback": Access.PUBLIC,
    "accounts:accept": Access.PUBLIC,
    # Everyone's own pages.
    "home": Access.SESSION,
    "chats:agents": Access.SESSION,
    "chats:new": Access.SESSION,
    "chats:detail": Access.SESSION,
    "chats:events": Access.SESSION,
    "chats:send": Access.SESSION,
    "chats:edit-message": Access.SESSION,
    "chats:remove-message": Access.SESSION,
    "chats:stop": Access.SESSION,
    "chats:subagent": Access.SESSION,
    "userkeys:list": Access.SESSION,
    "userkeys:remove": Access.SESSION,
    "userkeys:test": Access.SESSION,
    "userkeys:save": Access.SESSION,
    "tokens:list": Access.SESSION,
    "tokens:new": Access.SESSION,
    "tokens:revoke": Access.SESSION,
    "tokens:sign-out-others": Access.SESSION,
    "usage:mine": Access.SESSION,
    # The JSON endpoints tools may call with a platform token.
    "routing:available-models": Access.SESSION_OR_TOKEN,
    # The Admin area.
    "admin-dialog": Access.ADMIN,
    "accounts:people": Access.ADMIN,
    "accounts:invite": Access.ADMIN,
    "accounts:invitation-revoke": Access.ADMIN,
    "accounts:person": Access.ADMIN,
    "accounts:person-role": Access.ADMIN,
    "accounts:person-deactivate": Access.ADMIN,
    "accounts:person-reactivate": Access.ADMIN,
    "accounts:person-delete": Access.ADMIN,
    "accounts:person-groups": Access.ADMIN,
    "accounts:group-create": Access.ADMIN,
    "accounts:group": Access.ADMIN,
    "accounts:group-members": Access.ADMIN,
    "accounts:group-delete": Access.ADMIN,
    "providers:list": Access.ADMIN,
    "providers:edit": Access.ADMIN,
    "providers:delete": Access.ADMIN,
    "providers:test": Access.ADMIN,
    "providers:key_add": Access.ADMIN,
    "providers:key_remove": Access.ADMIN,
    "providers:key_fixed": Access.ADMIN,
    "providers:breaker_retry": Access.ADMIN,
    "models:list": Access.ADMIN,
    "models:add": Access.ADMIN,
    "models:purposes": Access.ADMIN,
    "models:discover": Access.ADMIN,
    "models:discover-add": Access.ADMIN,
    "models:edit": Access.ADMIN,
    "models:star": Access.ADMIN,
    "models:toggle": Access.ADMIN,
    "models:delete": Access.ADMIN,
    "models:alias-add": Access.ADMIN,
    "budgets:list": Access.ADMIN,
    "budgets:add": Access.ADMIN,
    "budgets:edit": Access.ADMIN,
    "budgets:remove": Access.ADMIN,
    "budgets:limit_add": Access.ADMIN,
    "budgets:limit_edit": Access.ADMIN,
    "budgets:limit_remove": Access.ADMIN,
    "models:alias-remove": Access.ADMIN,
    "audit:list": Access.ADMIN,
    "tokens:admin-list": Access.ADMIN,
    "tokens:admin-revoke": Access.ADMIN,
    "usage:list": Access.ADMIN,
}
# Every URL of Django's admin (its own names, under this namespace) is for admins' browsers.
DJANGO_ADMIN_NAMESPACE = "admin"


def access_of(url_name: str) -> Access | None:
    """The access a URL name has in the table (None: not in it)."""
    if url_name.split(":", 1)[0] == DJANGO_ADMIN_NAMESPACE:
        return Access.ADMIN
    return URL_ACCESS.get(url_name)


PLATFORM_TOKEN_URL_NAMES = frozenset(
    name for name, access in URL_ACCESS.items() if access is Access.SESSION_OR_TOKEN
)
