"""The one entry point that builds a route for every model call: ``build_route``.

``ModelRequest`` (who, which chat model, why, which platform token started it) goes in;
``ModelRoute`` (direct or gateway, where, with which headers and options) comes out, or a
``RouteError`` saying what the user can do. Nothing is cached, so a key saved or removed, a
revoked token, a policy flag or a disabled provider shows on the very next call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from models_catalog.models import ModelConfig, Purpose, PurposeModel
from models_catalog.options import REQUEST_OPTION_NAMES
from providers.crypto import REDACTED, Secret
from providers.registry import WireFormat
from tokens.models import ApiToken, InactiveReason

from .availability import availability_for
from .credentials import Credential, CredentialSource, Unavailable
from .deployment import DELEGATED, GOVERNANCE_HEADER, RoutePath, gateway_api_root, model_call_path
from .errors import NoActiveApiKey
from .purposes import choose_model, unavailable_error


class RouteHeaders(Mapping[str, str]):
    """Request headers in which credentials stay hidden until ``reveal()`` at send time.

    ``repr``, ``str``, f-strings, ``%``, logging and ``vars()`` all show ``********``.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str | Secret] | None = None) -> None:
        self._values: dict[str, str | Secret] = dict(values or {})

    def __getitem__(self, name: str) -> str:
        value = self._values[name]
        return REDACTED if isinstance(value, Secret) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def names(self) -> list[str]:
        return list(self._values)

    def reveal(self) -> dict[str, str]:
        """The headers to put on the wire. Call only where the request is sent."""
        return {
            name: value.reveal() if isinstance(value, Secret) else value
            for name, value in self._values.items()
        }

    def __repr__(self) -> str:
        return f"RouteHeaders({dict(self.items())!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("route headers are not picklable")


@dataclass(frozen=True)
class ModelRequest:
    user: Any
    model: ModelConfig | None
    purpose: Purpose = Purpose.CHAT
    # The platform token that started this call (a session's or a tool's); None if unknown.
    api_key_id: int | None = None


@dataclass(frozen=True)
class GatewayIdentity:
    """Who an in-process gateway call is for. Travels in the ASGI scope of the in-process
    transport, never as a header, so no outside caller can claim it."""

    user_id: int
    api_key_id: int


@dataclass(frozen=True)
class ModelRoute:
    path: RoutePath
    purpose: Purpose
    model: ModelConfig
    # Where this API's paths are appended: a provider's API root, or the gateway's for it.
    base_url: str
    headers: RouteHeaders
    credential_source: CredentialSource
    # The model's options under this API's parameter names (sent in the request body).
    options: dict[str, Any] = field(default_factory=dict)
    identity: GatewayIdentity | None = None

    @property
    def provider_type(self) -> str:
        return self.model.provider.type

    @property
    def wire_format(self) -> WireFormat:
        return self.model.provider.spec.wire_format

    @property
    def identifier(self) -> str:
        return self.model.identifier

    @property
    def delegated(self) -> bool:
        return self.path == RoutePath.GATEWAY and self.credential_source == CredentialSource.USER

    def explain(self) -> dict[str, Any]:
        """What support needs to see (``route_explain``): never a credential."""
        return {
            "path": self.path.value,
            "purpose": self.purpose.value,
            "provider": self.provider_type,
            "model": self.identifier,
            "model_id": self.model.pk,
            "base_url": self.base_url,
            "credential_source": self.credential_source.value,
            "delegated": self.delegated,
            "headers": dict(self.headers.items()),
            "options": self.options,
            "api_key_id": self.identity.api_key_id if self.identity else None,
        }


INACTIVE_MESSAGES = {
    InactiveReason.REVOKED: (
        "api_key_revoked",
        "The platform token this call was started with ({token}) has been revoked, so it "
        "cannot go through the AI Gateway. Sign in again, or use an active token.",
    ),
    InactiveReason.EXPIRED: (
        "api_key_expired",
        "The platform token this call was started with ({token}) has expired. Sign in again, "
        "or use an active token.",
    ),
    InactiveReason.USER_DEACTIVATED: (
        "user_deactivated",
        "This account is deactivated, so it cannot call models. Contact an administrator.",
    ),
}


def _active_identity(request: ModelRequest) -> GatewayIdentity:
    """Fail closed: the initiating token must exist, be active and be this user's."""
    if request.api_key_id is None:
        raise NoActiveApiKey(
            "This call is not attributed to a platform token, so it cannot go through the AI "
            "Gateway. Sign in again, or use a platform token.",
            code="api_key_missing",
        )
    token = ApiToken.objects.select_related("user").filter(pk=request.api_key_id).first()
    if token is None or token.user_id != request.user.pk:
        raise NoActiveApiKey(
            "The platform token of this call does not belong to you. Sign in again.",
            code="api_key_not_yours",
        )
    reason = token.inactive_reason(timezone.now())
    if reason is not None:
        code, template = INACTIVE_MESSAGES[reason]
        raise NoActiveApiKey(template.format(token=token.display_prefix), code=code)
    return GatewayIdentity(user_id=request.user.pk, api_key_id=token.pk)


def request_options(model: ModelConfig, purpose: Purpose) -> dict[str, Any]:
    general = {name: getattr(model, name) for name in REQUEST_OPTION_NAMES}
    if purpose == Purpose.QUICK:
        general["temperature"] = 0
    return model.provider.spec.request_options(general, model.options or {})


def build_route(request: ModelRequest) -> ModelRoute:
    """At most five queries whatever the size of the deployment (asserted in the tests)."""
    path = model_call_path()
    identity = _active_identity(request) if path == RoutePath.GATEWAY else None
    availability = availability_for(request.user)
    overrides = (
        PurposeModel.objects.as_map()
        if request.purpose not in (Purpose.CHAT, Purpose.COMPUTER_USE)
        else {}
    )
    model = choose_model(
        purpose=request.purpose,
        chat_model=request.model,
        availability=availability,
        overrides=overrides,
    )
    resolution = availability.resolutions[model.provider_id]
    if isinstance(resolution, Unavailable):  # pragma: no cover - choose_model returns usable
        raise unavailable_error(model, availability)
    return _route(request, model, resolution, path, identity)


def _route(
    request: ModelRequest,
    model: ModelConfig,
    credential: Credential,
    path: RoutePath,
    identity: GatewayIdentity | None,
) -> ModelRoute:
    spec = model.provider.spec
    auth = spec.auth
    extra = dict(auth.extra)

    def key_header() -> dict[str, Secret]:
        return {auth.name: Secret(f"{auth.prefix}{credential.secret.reveal()}")}

    if path == RoutePath.DIRECT:
        base_url = spec.api_root(model.provider.effective_base_url or "")
        headers = RouteHeaders({**key_header(), **extra})
    elif credential.source == CredentialSource.USER:
        base_url = gateway_api_root(model.provider.type)
        headers = RouteHeaders({**key_header(), **extra, GOVERNANCE_HEADER: DELEGATED})
    else:
        # The gateway injects the central key itself: the route carries no credential at all.
        base_url = gateway_api_root(model.provider.type)
        headers = RouteHeaders(extra)
    return ModelRoute(
        path=path,
        purpose=request.purpose,
        model=model,
        base_url=base_url,
        headers=headers,
        credential_source=credential.source,
        options=request_options(model, request.purpose),
        identity=identity,
    )
