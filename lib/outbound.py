"""Every call to a provider leaves through here: one pooled HTTP/1.1 client per event loop
(``lib.http1``), connect and read timeouts, and an address guard applied after DNS
resolution.

The guard refuses link-local and cloud-metadata addresses (unless
``ALLOW_LINK_LOCAL_BASE_URLS``) for every address a name resolves to, and for IP literals.
The client connects to exactly the addresses that were checked, so a name cannot resolve
once to a safe address for the check and again to a metadata address for the connection.

Egress through a proxy follows the usual variables: ``HTTPS_PROXY`` for https origins,
``HTTP_PROXY`` for http ones, hosts in ``NO_PROXY`` directly (lower-case names too). Behind
a proxy the guard still refuses a forbidden IP literal, or a name that resolves here to a
forbidden address; a name that does not resolve here is left to the proxy.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

from django.conf import settings

from .http1 import (
    ConnectError,
    Origin,
    OutboundError,
    Pool,
    ProtocolError,
    Proxy,
    ProxyRefused,
    Response,
    ServerDisconnected,
    Timeout,
)
from .loops import PerLoop
from .netguard import is_metadata_address, normalize_host
from .settings_cache import cached_settings

__all__ = [
    "AddressRefused",
    "ConnectError",
    "OutboundError",
    "ProtocolError",
    "ProxyRefused",
    "Response",
    "ServerDisconnected",
    "Timeout",
    "request",
]


class AddressRefused(OSError):
    """The destination is a link-local or cloud-metadata address."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} is a link-local or cloud metadata address; refused")
        self.host = host


def address_allowed(host: str) -> bool:
    return _address_allowed(host, settings.ALLOW_LINK_LOCAL_BASE_URLS)


@lru_cache(maxsize=1024)
def _address_allowed(host: str, allow_link_local: bool) -> bool:
    if allow_link_local:
        return True
    normalized = normalize_host(host)
    return not (
        normalized is not None
        and not isinstance(normalized, str)
        and is_metadata_address(normalized)
    )


def check_addresses(host: str, addresses: list[str]) -> None:
    """Refuse the call when any address the host stands for is one the guard forbids."""
    for address in addresses:
        if not address_allowed(address):
            raise AddressRefused(host)


def timeout(read: float | None = None, connect: float | None = None) -> Timeout:
    return _timeout(
        connect if connect is not None else settings.OUTBOUND_CONNECT_TIMEOUT,
        read if read is not None else settings.OUTBOUND_READ_TIMEOUT,
    )


@lru_cache(maxsize=16)
def _timeout(connect: float, read: float) -> Timeout:
    return Timeout(connect=connect, read=read)


class EnvironmentProxies:
    """Which proxy each origin is reached through, from the environment as it was when the
    pool was made."""

    def __init__(self, variables: dict[str, str] | None = None) -> None:
        self._proxies = urllib.request.getproxies_environment() if variables is None else variables

    def __call__(self, origin: Origin) -> Proxy | None:
        scheme, host, port = origin
        url = self._proxies.get(scheme)
        # NO_PROXY: names, domain suffixes, host:port, or "*" (no address ranges).
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if not url or bypass(f"{host}:{port}", self._proxies):
            return None
        return Proxy.from_url(url)

    def problems(self) -> list[str]:
        """One line per proxy variable that cannot be used (never the URL itself)."""
        found = []
        for scheme in ("https", "http"):
            url = self._proxies.get(scheme)
            if url:
                try:
                    Proxy.from_url(url)
                except ValueError as error:
                    found.append(f"{scheme.upper()}_PROXY: {error}")
        return found


def _new_pool() -> Pool:
    return Pool(
        limit=settings.OUTBOUND_MAX_CONNECTIONS,
        check_addresses=check_addresses,
        proxy_for=EnvironmentProxies(),
    )


_pools: PerLoop[Pool] = PerLoop(_new_pool)


def pool() -> Pool:
    """The shared pool of the running event loop (created on first use)."""
    current = _pools.get()
    if current.closed:
        _pools.pop()
        current = _pools.get()
    return current


@asynccontextmanager
async def one_off_pool() -> AsyncIterator[Pool]:
    """A pool of its own, closed on leaving, for rare calls such as an admin's connection
    test: it connects afresh (what such a test should check) and, when the view runs on a
    short-lived event loop (WSGI), leaves no open connection behind."""
    own = _new_pool()
    try:
        yield own
    finally:
        await own.close()


async def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    data: bytes | None = None,
    timeout: Timeout | None = None,
    via: Pool | None = None,
) -> Response:
    """Send a request (on the shared pool unless ``via`` is given) and return once the
    answer's headers have arrived; the caller reads (or streams) the body and releases the
    response. Raises ``AddressRefused``, ``OutboundError`` (``ConnectError``,
    ``ServerDisconnected``, ``ProtocolError``), ``TimeoutError``, or ``ValueError`` for a
    URL or header that cannot be sent."""
    return await (via or pool()).request(
        method,
        url,
        headers=headers,
        data=data,
        # (the parameter hides the module's timeout() here)
        timeout=timeout
        or _timeout(
            cached_settings.OUTBOUND_CONNECT_TIMEOUT, cached_settings.OUTBOUND_READ_TIMEOUT
        ),
    )


async def close_all() -> None:
    """Close the current loop's pool (at shutdown)."""
    current = _pools.pop()
    if current is not None:
        await current.close()
