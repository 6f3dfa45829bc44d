"""Every call to a provider leaves through here: one pooled aiohttp session per event loop,
connect and read timeouts, and an address guard applied after DNS resolution.

The guard refuses link-local and cloud-metadata addresses (unless
``ALLOW_LINK_LOCAL_BASE_URLS``) for every address a name resolves to, and for IP literals,
which aiohttp would otherwise connect to without asking a resolver. Because aiohttp connects
to exactly the addresses the resolver returned, a name cannot resolve once to a safe address
for the check and again to a metadata address for the connection.
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from django.conf import settings

from .netguard import is_metadata_address, normalize_host


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


class GuardedResolver(AbstractResolver):
    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if not address_allowed(result["host"]):
                raise AddressRefused(host)
        return results

    async def close(self) -> None:
        await self._resolver.close()


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def timeout(read: float | None = None, connect: float | None = None) -> aiohttp.ClientTimeout:
    return _timeout(
        connect if connect is not None else settings.OUTBOUND_CONNECT_TIMEOUT,
        read if read is not None else settings.OUTBOUND_READ_TIMEOUT,
    )


@lru_cache(maxsize=16)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=read)


def _new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.OUTBOUND_MAX_CONNECTIONS,
        limit_per_host=0,
        ttl_dns_cache=60,
        resolver=GuardedResolver(),
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout(),
        auto_decompress=True,
        # No cookies are kept between calls of different users.
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent",),
    )


def session() -> aiohttp.ClientSession:
    """The shared session of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        current = _new_session()
        _sessions[loop] = current
    return current


@asynccontextmanager
async def one_off_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A session of its own, closed on leaving, for rare calls such as an admin's connection
    test: it connects afresh (what such a test should check) and, when the view runs on a
    short-lived event loop (WSGI), leaves no pooled connection behind."""
    own = _new_session()
    try:
        yield own
    finally:
        await own.close()


def check_destination(url: str) -> None:
    """Refuse an IP-literal destination that the guard forbids (names go to the resolver)."""
    end = url.find("/", url.find("//") + 2)
    host = _host_of(url if end < 0 else url[:end])
    if not address_allowed(host):
        raise AddressRefused(host)


@lru_cache(maxsize=1024)
def _host_of(url_start: str) -> str:
    return urlsplit(url_start).hostname or ""


async def request(
    method: str, url: str, *, via: aiohttp.ClientSession | None = None, **kwargs: Any
) -> aiohttp.ClientResponse:
    """Start a request (on the shared session unless ``via`` is given); the caller reads (or
    streams) and releases the response."""
    check_destination(url)
    return await (via or session()).request(method, url, allow_redirects=False, **kwargs)


async def close_all() -> None:
    """Close the current loop's session (at shutdown)."""
    loop = asyncio.get_running_loop()
    current = _sessions.pop(loop, None)
    if current is not None and not current.closed:
        await current.close()
