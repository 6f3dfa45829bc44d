"""Test connection and model discovery: one cheap authenticated call to a provider.

The call leaves through ``lib.outbound`` (address guard, pooled session) with a short overall
deadline, so a hanging provider costs the admin a few seconds and nobody else anything: the
views that use this are async and the wait is an ``await``, not a blocked worker thread.
The key travels only in the request's auth header; nothing it sends back is shown unscrubbed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings

from lib import outbound
from lib.scrub import Scrubber
from lib.text import decimal_as_typed

from .models import Provider
from .registry import AZURE_API_VERSION, ProviderTypeSpec, UpstreamStyle, WireFormat

MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)
MAX_BODY = 4 * 1024 * 1024  # a models list is far smaller; stop reading a runaway answer


class Outcome(StrEnum):
    WORKS = "works"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed_out"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    Outcome.WORKS: "Works",
    Outcome.REJECTED: "Key rejected",
    Outcome.UNREACHABLE: "Unreachable",
    Outcome.TIMED_OUT: "Timed out",
    Outcome.FAILED: "Provider error",
}


@dataclass(frozen=True)
class DiscoveredModel:
    identifier: str
    display_name: str
    context_limit: int | None = None
    input_price: Decimal | None = None  # per million tokens
    output_price: Decimal | None = None
    cache_read_price: Decimal | None = None
    cache_write_price: Decimal | None = None
    web_search_price: Decimal | None = None  # per 1,000 searches


@dataclass
class ConnectionResult:
    outcome: Outcome
    message: str
    status: int | None = None
    elapsed_ms: int = 0
    models: list[DiscoveredModel] = field(default_factory=list)

    @property
    def works(self) -> bool:
        return self.outcome is Outcome.WORKS


def listing_url(spec: ProviderTypeSpec, base_url: str) -> str:
    """Where the provider lists its models, from its effective base URL."""
    root = spec.api_root(base_url)
    if spec.upstream == UpstreamStyle.BEDROCK:
        # The model list lives on the control plane (bedrock.REGION), not on bedrock-runtime.
        parts = urlsplit(root)
        host = (parts.hostname or "").replace("bedrock-runtime.", "bedrock.", 1)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}/foundation-models"
    if spec.upstream == UpstreamStyle.AZURE and "/openai/deployments/" in root:
        resource = root.split("/openai/deployments/")[0]
        return f"{resource}/openai/models?api-version={AZURE_API_VERSION}"
    if spec.wire_format == WireFormat.ANTHROPIC:
        return f"{root}/models?limit=1000"
    if spec.wire_format == WireFormat.GOOGLE:
        return f"{root}/models?pageSize=1000"
    return f"{root}/models"


async def check_connection(
    provider: Provider, key: str, *, discover: bool = False
) -> ConnectionResult:
    """Make the provider's cheap authenticated call (and, to discover, list its models)."""
    spec = provider.spec
    base_url = provider.effective_base_url
    if not base_url:
        return ConnectionResult(Outcome.UNREACHABLE, f"{spec.label} has no endpoint set.")
    headers = spec.auth.headers_for(key)
    check = spec.key_check_path
    url = (
        f"{spec.api_root(base_url)}{check}"
        if check and not discover
        else listing_url(spec, base_url)
    )
    started = time.monotonic()
    deadline = settings.PROVIDER_TEST_TIMEOUT
    try:
        async with asyncio.timeout(deadline):
            status, body = await _get(url, headers)
    except TimeoutError:
        return ConnectionResult(
            Outcome.TIMED_OUT,
            f"{spec.label} did not answer within {deadline:g} s.",
            None,
            _ms(started),
        )
    except outbound.AddressRefused:
        return ConnectionResult(
            Outcome.UNREACHABLE,
            f"{spec.label}'s address is a link-local or cloud metadata address, which this "
            "server does not call.",
        )
    except (outbound.OutboundError, OSError, ValueError) as error:
        return ConnectionResult(
            Outcome.UNREACHABLE,
            f"Could not reach {_host(url)} ({_reason(error)}).",
            None,
            _ms(started),
        )
    elapsed = _ms(started)
    body = Scrubber(key).clean(body)  # a provider may quote the key anywhere, any how
    if status in (401, 403):
        return ConnectionResult(
            Outcome.REJECTED,
            f"{spec.label} refused the key (HTTP {status}){_detail(body, key)}",
            status,
            elapsed,
        )
    if status >= 400:
        return ConnectionResult(
            Outcome.FAILED,
            f"{spec.label} answered HTTP {status}{_detail(body, key)}",
            status,
            elapsed,
        )
    models = _parse_models(spec, body) if discover or not check else []
    found = f" {len(models)} model{'' if len(models) == 1 else 's'} listed." if models else ""
    return ConnectionResult(
        Outcome.WORKS,
        f"{spec.label} accepted the key (HTTP {status}, {elapsed} ms).{found}",
        status,
        elapsed,
        models,
    )


async def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    async with outbound.one_off_pool() as pool:
        response = await outbound.request("GET", url, via=pool, headers=headers)
        try:
            body = await response.read(MAX_BODY)
        finally:
            response.release()
        return response.status, body


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _reason(error: BaseException) -> str:
    if isinstance(error, outbound.ConnectError) and error.through_proxy:
        return f"through the outbound proxy: {_connect_reason(error.os_error)}"
    if isinstance(error, outbound.ConnectError):
        return _connect_reason(error.os_error)
    if isinstance(error, outbound.ServerDisconnected):
        return "the connection closed before an answer"
    if isinstance(error, outbound.ProtocolError):
        return "its answer was not HTTP this server can read"
    if isinstance(error, ValueError):
        return "the saved address or key cannot be sent in a request"
    return type(error).__name__


def _connect_reason(inner: BaseException | None) -> str:
    if isinstance(inner, outbound.ProxyRefused):
        return str(inner)
    if isinstance(inner, ssl.SSLCertVerificationError):
        return "its TLS certificate is not trusted"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, socket.gaierror):
        return "the name does not resolve"
    return "connection failed"


def _detail(body: bytes, key: str) -> str:
    """The provider's own error message, if it sent one, with the key scrubbed out."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "."
    message: Any = data.get("error", data) if isinstance(data, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    if isinstance(data, dict) and message is None:
        message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        return "."
    text = Scrubber(key).clean_text(message)  # decoded: its escapes are undone by now
    return f": {' '.join(text.split())[:300]}"


def _parse_models(spec: ProviderTypeSpec, body: bytes) -> list[DiscoveredModel]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(data, dict):
        return []
    found: list[DiscoveredModel] = []
    if spec.upstream == UpstreamStyle.BEDROCK:
        for item in _items(data, "modelSummaries"):
            # Only the models this provider type can call: Anthropic's, in the Messages format.
            if item.get("providerName") == "Anthropic" and isinstance(item.get("modelId"), str):
                found.append(DiscoveredModel(item["modelId"], str(item.get("modelName") or "")))
    elif spec.wire_format == WireFormat.GOOGLE:
        for item in _items(data, "models"):
            methods = item.get("supportedGenerationMethods") or ["generateContent"]
            name = item.get("name")
            if isinstance(name, str) and "generateContent" in methods:
                found.append(
                    DiscoveredModel(
                        name.removeprefix("models/"),
                        str(item.get("displayName") or ""),
                        _int(item.get("inputTokenLimit")),
                    )
                )
    else:
        for item in _items(data, "data"):
            if not isinstance(item.get("id"), str):
                continue
            pricing = item["pricing"] if isinstance(item.get("pricing"), dict) else {}
            found.append(
                DiscoveredModel(
                    item["id"],
                    str(item.get("display_name") or item.get("name") or ""),
                    _int(item.get("context_length") or item.get("context_window")),
                    _catalog_price(pricing.get("prompt", pricing.get("input"))),
                    _catalog_price(pricing.get("completion", pricing.get("output"))),
                    # Without these, a call that reads or writes the cache has no known cost.
                    _catalog_price(pricing.get("input_cache_read")),
                    _catalog_price(pricing.get("input_cache_write")),
                    # Per search (OpenRouter's, Vercel's); the catalog prices per 1,000.
                    _catalog_price(pricing.get("web_search"), per=THOUSAND),
                )
            )
    return sorted(
        {m.identifier: m for m in found if m.identifier.strip()}.values(),
        key=lambda m: m.identifier,
    )


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 < value < 2**31 else None


def _catalog_price(value: Any, per: Decimal = MILLION) -> Decimal | None:
    """OpenRouter and Vercel price per token (or per search), as strings; the catalog prices
    per million tokens (per thousand searches)."""
    try:
        price = Decimal(str(value)) * per
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price < 0 or price >= Decimal(10) ** 8:
        return None
    return Decimal(decimal_as_typed(price.quantize(Decimal("0.000001"))))
