"""A small HTTP/1.1 client for calls to providers: keep-alive connections per origin, parsed
by httptools (the parser uvicorn serves with), TLS, connect and read timeouts, and response
bodies streamed as they arrive with back-pressure.

Why not aiohttp's client: on the gateway's hot path it cost ~226 µs of CPU per call against
~80 µs for this (measured here with the same loop and parser), and it was the largest single
cost of a gateway call. What this client leaves out, on purpose: redirects (never followed
for provider calls), cookies (never kept between users), HTTP/2, and compression (it asks
for identity; a gzip or deflate answer is still decoded).

Through an HTTP proxy (``Proxy``; ``lib.outbound`` takes it from ``HTTPS_PROXY`` and
friends): https origins are reached through a ``CONNECT`` tunnel, with TLS end to end to
the provider; http origins are asked of the proxy in absolute form.

``lib.outbound`` is the only user: it owns the pools and the address guard.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
import zlib
from base64 import b64encode
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools

from .netguard import normalize_host

# Reading pauses when this much of a body is waiting for a slow consumer.
HIGH_WATER = 1024 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DNS_TTL = 60.0
# Servers close idle connections on their own clock (uvicorn, so vLLM and many
# OpenAI-compatible servers, and Node.js after 5 s). A POST written just as the server closes
# is lost, and is not sent again (it may have been received), so idle connections retire
# before the server's limit: the one it announces in ``Keep-Alive: timeout=N``, or the one
# seen when it closed a connection of ours that sat idle.
RETIRE_AT = 0.8  # of the server's idle limit
LEARNED_FROM = 1.0  # seconds idle; a server closing sooner is restarting, not timing out
LEARNED_FOR = 600.0  # then the pool's own limit applies until the server closes one again


class OutboundError(Exception):
    """A call that did not get a complete, readable answer."""


class ConnectError(OutboundError):
    """The connection could not be opened; ``os_error`` says why."""

    def __init__(
        self, host: str, os_error: BaseException | None, through_proxy: bool = False
    ) -> None:
        via = " through the outbound proxy" if through_proxy else ""
        super().__init__(f"could not connect to {host}{via}")
        self.host, self.os_error, self.through_proxy = host, os_error, through_proxy


class ProxyRefused(OSError):
    """The proxy answered its ``CONNECT`` with something other than 2xx."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"the proxy answered {status} to CONNECT"
            if status
            else "the proxy's answer to CONNECT is not HTTP"
        )
        self.status = status


class ServerDisconnected(OutboundError):
    """The connection closed before the answer was complete."""


class ProtocolError(OutboundError):
    """The answer is not HTTP this client can read."""


@dataclass(frozen=True, slots=True)
class Timeout:
    connect: float  # to resolve the name and open the connection (TLS included)
    read: float  # the longest wait for the next bytes of the answer


Origin = tuple[str, str, int]  # scheme, host, port
# Given the resolved addresses of a host, raises if any of them must not be called.
AddressCheck = Callable[[str, list[str]], None]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy to reach origins through. Its credentials never show in a repr."""

    host: str
    port: int
    authorization: str = field(default="", repr=False)  # a Proxy-Authorization value

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """``http://[user:password@]host[:port]``; ValueError for anything else (the
        message never holds the URL, which may carry a password)."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("an outbound proxy must be an http:// URL with a host")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError("the outbound proxy's port is not a number") from None
        authorization = ""
        if parts.username is not None:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + b64encode(user_pass.encode()).decode("ascii")
        return cls(parts.hostname, port, authorization)


# The proxy to reach an origin through, or None to connect to it directly.
ProxyChoice = Callable[[Origin], Proxy | None]


def _direct(origin: Origin) -> Proxy | None:
    return None


@lru_cache(maxsize=1024)
def split_url(url: str) -> tuple[Origin, str, str]:
    """(origin, request target, Host header) of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("only http and https URLs can be called")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host, host_header = parts.hostname, parts.netloc.rpartition("@")[2]
    if not host.isascii():
        # Read as resolvers read it (``169。254。169。254`` is 169.254.169.254), before the
        # address guard and before the name is handed to a proxy.
        normalized = normalize_host(host)
        if normalized is None:
            raise ValueError("the URL's host is not a valid host name")
        host = str(normalized)
        named = f"[{host}]" if ":" in host else host
        host_header = f"{named}:{parts.port}" if parts.port else named
    target = _requote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, host, port), target, host_header


_UNSAFE_IN_PATH = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")


def _requote(path: str) -> str:
    """Percent-encode what may not stand in a path, keeping escapes already made."""
    return _UNSAFE_IN_PATH.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), path)


def request_head(
    method: str, target: str, host: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\0" in value or not _sendable_name(name):
            raise ValueError(f"the header {name[:40]!r} cannot be sent")
        lines.append(f"{name}: {value}\r\n")
    if "accept-encoding" not in headers:
        lines.append("accept-encoding: identity\r\n")
    if body is not None:
        lines.append(f"content-length: {len(body)}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        # Not the codec's message: it would quote part of the head, perhaps of a key.
        raise ValueError("a header holds characters HTTP cannot carry") from None


def joined_headers(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers as text by lower-case name, a repeated header's values joined with ", " in
    order (RFC 9110: one list)."""
    found: dict[str, str] = {}
    for name, value in pairs:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Names already found valid: the same few names come with every call, and a set lookup
# costs a fraction of the regular expression (bounded: names are the callers' to choose).
_sendable_names: set[str] = set()


def _sendable_name(name: str) -> bool:
    if name in _sendable_names:
        return True
    if not _TOKEN.fullmatch(name):
        return False
    if len(_sendable_names) < 1024:
        _sendable_names.add(name)
    return True


class Response:
    """An answer whose status and headers have arrived; the body is read with ``read()`` or
    ``iter_chunks()``. Always ``release()`` (keeps the connection when the body was read to
    the end) or ``close()`` it."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_connection",
        "_decoder",
        "_error",
        "_headers_done",
        "_informational",
        "_keep_alive",
        "_paused",
        "_read_timeout",
        "_until_eof",
        "_waiter",
        "raw_headers",
        "status",
    )

    def __init__(self, connection: Connection, read_timeout: float) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []  # names in lower case
        self._connection: Connection | None = connection
        self._read_timeout = read_timeout
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._headers_done = False
        self._informational = False
        self._until_eof = False
        self._complete = False
        self._keep_alive = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._paused = False

    @property
    def headers(self) -> dict[str, str]:
        """Header names in lower case (repeated headers joined with a comma)."""
        return joined_headers(self.raw_headers)

    async def read(self, limit: int | None = None) -> bytes:
        """The body (or its first ``limit`` bytes)."""
        if self._complete and self._decoder is None and self._error is None:
            # All of it arrived already (the usual short answer): no need to iterate.
            data = self._take_chunks()
            return data if limit is None else data[:limit]
        parts, size = [], 0
        async for chunk in self.iter_chunks():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                return b"".join(parts)[:limit]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        while True:
            if self._chunks:
                yield self._take_chunks()
            elif self._error is not None:
                raise self._error
            elif self._complete:
                if self._decoder is not None:
                    tail = self._decoder.flush()
                    self._decoder = None
                    if tail:
                        yield tail
                return
            else:
                await self._wait()

    def _take_chunks(self) -> bytes:
        """What arrived and was not read yet; reading resumes if it was paused."""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self._connection is not None:
            self._paused = False
            self._connection.resume_reading()
        return data

    def release(self) -> None:
        """Done with this answer: its connection goes back to the pool if it can be reused."""
        connection, self._connection = self._connection, None
        if connection is not None:
            if self._complete and self._keep_alive and self._error is None:
                connection.pool.put_back(connection)
            else:
                connection.pool.discard(connection)

    def close(self) -> None:
        """Stop now: the connection is closed (the provider sees the call end)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.pool.discard(connection)
        if not self._complete and self._error is None:
            self._fail(ServerDisconnected("the call was closed"))

    # -- fed by the connection ---------------------------------------------------------------

    async def wait_for_headers(self) -> None:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._read_timeout, self._timed_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())
            self._error = TimeoutError()
            if self._connection is not None:
                self._connection.pool.discard(self._connection)
                self._connection = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _headers_complete(self, status: int) -> None:
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): skip
            self._informational = True
            self.raw_headers.clear()
            return
        self.status = status
        encoding = b""
        length_known = False
        for name, value in self.raw_headers:
            if name == b"content-encoding":
                encoding = value.strip().lower()
            elif name == b"content-length" or (
                name == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                length_known = True
        self._until_eof = not length_known and status not in (204, 304)
        if encoding in (b"gzip", b"x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in (b"", b"identity"):
            self._fail(ProtocolError("the answer uses a content encoding this server can't read"))
            return
        self._headers_done = True
        self._wake()

    def _body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error:
                self._fail(ProtocolError("the compressed answer could not be read"))
                return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused and self._connection is not None:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def _message_complete(self, keep_alive: bool) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete, self._keep_alive = True, keep_alive
        self._wake()

    def _connection_lost(self, error: BaseException | None) -> None:
        if self._complete:
            return
        if self._headers_done and self._until_eof and self._error is None:
            self._complete, self._keep_alive = True, False  # the body ran to the close
            self._wake()
            return
        message = "the provider closed the connection before answering in full"
        disconnected = ServerDisconnected(message)
        disconnected.__cause__ = error
        self._fail(disconnected)


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one answer at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool, self.origin = pool, origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.discarded = False
        self.uses = 0
        self.written = False  # whether the current request went out
        self.idle_since = 0.0
        self.idle_limit = 0.0  # seconds this connection may sit idle before it retires
        self.announced_idle: float | None = None  # the server's Keep-Alive timeout

    def send(self, response: Response, data: bytes) -> None:
        self.response = response
        self.uses += 1
        self.written = False
        if self.closed or self.transport is None or self.transport.is_closing():
            response._connection_lost(None)
            return
        self.transport.write(data)
        self.written = True

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: this connection can't be trusted
            self.pool.discard(self)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.response._fail(ProtocolError("the provider's answer is not valid HTTP"))
            self.pool.discard(self)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None:
            self.response._connection_lost(exc)
        elif self.uses and not self.discarded:  # the server closed it while it sat idle
            self.pool.learn_idle_limit(self)
        self.pool.discard(self)

    # -- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        # Lowered once here: every reader of the headers compares names in lower case.
        name = name.lower()
        if name == b"keep-alive":
            self.announced_idle = announced_idle_timeout(value)
        self.response.raw_headers.append((name, value))  # type: ignore[union-attr]

    def on_headers_complete(self) -> None:
        self.response._headers_complete(self.parser.get_status_code())  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.response._body(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        self.response._message_complete(self.parser.should_keep_alive())  # type: ignore[union-attr]


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Pool:
    """Keep-alive connections for any number of origins, at most ``limit`` open at once
    (callers beyond that wait, first come first served)."""

    def __init__(
        self,
        *,
        limit: int,
        check_addresses: AddressCheck,
        keepalive: float = 15.0,
        proxy_for: ProxyChoice = _direct,
    ) -> None:
        self.limit, self.keepalive = limit, keepalive
        self._check_addresses = check_addresses
        self._proxy_for = proxy_for
        self._proxies: dict[Origin, Proxy | None] = {}
        self._idle: dict[Origin, list[Connection]] = {}
        self._learned_idle: dict[Origin, tuple[float, float]] = {}  # (limit seen, when)
        self._all: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}
        self._unresolvable: dict[tuple[str, int], float] = {}  # names left to the proxy
        self._last_sweep = time.monotonic()
        self.closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        data: bytes | None,
        timeout: Timeout,
    ) -> Response:
        """Send a request and wait for the answer's status and headers."""
        origin, target, host = split_url(url)
        proxy = self._proxy(origin)
        if proxy is not None and origin[0] == "http":
            target = f"http://{host}{target}"  # asked of the proxy itself
            if proxy.authorization:
                headers = {**headers, "proxy-authorization": proxy.authorization}
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        message = request_head(method, target, host, headers, data)
        if data:
            message += data
        for attempt in (1, 2):
            connection = await self._acquire(origin, timeout)
            reused = connection.uses > 0
            response = Response(connection, timeout.read)
            connection.send(response, message)
            try:
                await response.wait_for_headers()
            except ServerDisconnected:
                response.close()
                # A kept-alive connection the provider closed as the request went out. Sent
                # once more on a new connection only when that cannot run it twice: nothing
                # was written, or the method is idempotent (a POST may have been received,
                # and a model call must not be made, and billed, twice).
                safe = not connection.written or method in IDEMPOTENT
                if attempt == 1 and reused and not response.raw_headers and safe:
                    continue
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    def _proxy(self, origin: Origin) -> Proxy | None:
        try:
            return self._proxies[origin]
        except KeyError:
            proxy = self._proxies[origin] = self._proxy_for(origin)
            return proxy

    def put_back(self, connection: Connection) -> None:
        if self.closed or connection.closed or connection.discarded:
            self.discard(connection)
            return
        connection.response = None
        connection.idle_since = now = time.monotonic()
        connection.idle_limit = self._idle_limit(connection, now)
        self._idle.setdefault(connection.origin, []).append(connection)
        self._wake_one()
        if now - self._last_sweep > self.keepalive:
            self._last_sweep = now
            self._close_expired(now)

    def _idle_limit(self, connection: Connection, now: float) -> float:
        limit = self.keepalive
        if connection.announced_idle is not None:
            limit = min(limit, connection.announced_idle * RETIRE_AT)
        learned = self._learned_idle.get(connection.origin)
        if learned is not None:
            if now - learned[1] > LEARNED_FOR:
                del self._learned_idle[connection.origin]
            else:
                limit = min(limit, learned[0] * RETIRE_AT)
        return limit

    def learn_idle_limit(self, connection: Connection) -> None:
        """The server closed ``connection`` while it sat idle: its idle limit is about that."""
        now = time.monotonic()
        idle_for = now - connection.idle_since
        if idle_for >= LEARNED_FROM:
            self._learned_idle[connection.origin] = (idle_for, now)

    def _close_expired(self, now: float) -> None:
        """Idle connections past their keep-alive, for every origin (one no longer called
        would otherwise keep its sockets)."""
        for idle in list(self._idle.values()):
            for connection in [c for c in idle if now - c.idle_since > c.idle_limit]:
                self.discard(connection)

    def discard(self, connection: Connection) -> None:
        if connection.discarded:
            return
        connection.discarded = True
        self._all.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
        if connection.transport is not None and not connection.transport.is_closing():
            connection.transport.close()
        self._wake_one()

    async def close(self) -> None:
        self.closed = True
        for connection in list(self._all):
            self.discard(connection)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()

    # -- connections ---------------------------------------------------------------------

    async def _acquire(self, origin: Origin, timeout: Timeout) -> Connection:
        if self.closed:
            raise RuntimeError("this connection pool is closed")
        while True:
            idle = self._idle.get(origin)
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if connection.closed or now - connection.idle_since > connection.idle_limit:
                    self.discard(connection)
                    continue
                return connection
            if len(self._all) < self.limit:
                return await self._open(origin, timeout)
            if self._close_oldest_idle():
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _close_oldest_idle(self) -> bool:
        oldest = min(
            (c for idle in self._idle.values() for c in idle),
            key=lambda c: c.idle_since,
            default=None,
        )
        if oldest is None:
            return False
        self.discard(oldest)
        return True

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _open(self, origin: Origin, timeout: Timeout) -> Connection:
        _, host, port = origin
        placeholder = Connection(self, origin)  # holds a place under the limit while opening
        placeholder.discarded = True
        self._all.add(placeholder)
        proxy = self._proxy(origin)
        try:
            async with asyncio.timeout(timeout.connect):
                if proxy is None:
                    addresses = await self._resolve(host, port)
                    connection = await self._connect(origin, addresses, timeout)
                else:
                    await self._check_behind_proxy(host, port)
                    addresses = await self._resolve(proxy.host, proxy.port, check=False)
                    connection = await self._connect(origin, addresses, timeout, proxy)
        finally:
            self._all.discard(placeholder)
        self._all.add(connection)
        return connection

    async def _connect(
        self,
        origin: Origin,
        addresses: list[tuple[int, str]],
        timeout: Timeout,
        proxy: Proxy | None = None,
    ) -> Connection:
        """Connect to one of ``addresses`` (the origin's, or its proxy's)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = _tls_context() if scheme == "https" else None
        last_error: BaseException | None = None
        for family, address in addresses:
            try:
                if proxy is not None and tls is not None:
                    return await self._tunnel(origin, proxy, family, address, tls, timeout)
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin),
                    address,
                    proxy.port if proxy is not None else port,
                    family=family,
                    ssl=tls,
                    server_hostname=host if tls else None,
                    ssl_handshake_timeout=timeout.connect if tls else None,
                )
            except (ssl.SSLError, ProxyRefused) as error:
                raise ConnectError(host, error, proxy is not None) from None
            except OSError as error:
                last_error = error
                continue
            return connection
        raise ConnectError(host, last_error, proxy is not None)

    async def _tunnel(
        self,
        origin: Origin,
        proxy: Proxy,
        family: int,
        address: str,
        tls: ssl.SSLContext,
        timeout: Timeout,
    ) -> Connection:
        """A connection to an https origin through ``CONNECT`` at the proxy; TLS runs end to
        end with the origin, so the proxy sees neither the key nor the request."""
        _, host, port = origin
        loop = asyncio.get_running_loop()
        transport, handshake = await loop.create_connection(
            _TunnelHandshake, address, proxy.port, family=family
        )
        try:
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            head = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n"
            if proxy.authorization:
                head += f"proxy-authorization: {proxy.authorization}\r\n"
            transport.write(f"{head}\r\n".encode("latin-1"))
            status = await handshake.status
            if not 200 <= status < 300:
                raise ProxyRefused(status)
            secure = await loop.start_tls(
                transport,
                handshake,
                tls,
                server_hostname=host,
                ssl_handshake_timeout=timeout.connect,
            )
        except BaseException:
            transport.close()
            raise
        assert secure is not None
        connection = Connection(self, origin)
        secure.set_protocol(connection)
        connection.connection_made(secure)
        return connection

    async def _check_behind_proxy(self, host: str, port: int) -> None:
        """Behind a proxy the origin's name is resolved there. The guard still checks what
        can be seen from here: an IP literal, and the addresses of a name that resolves
        here too. A name that does not is not asked again for a minute (where the only way
        out is the proxy, local DNS may be slow to say no)."""
        now = time.monotonic()
        if self._unresolvable.get((host, port), 0.0) > now:
            return
        try:
            await self._resolve(host, port)
        except ConnectError:  # not resolvable here: the proxy resolves it
            self._unresolvable[(host, port)] = now + DNS_TTL

    async def _resolve(self, host: str, port: int, check: bool = True) -> list[tuple[int, str]]:
        """The addresses to connect to, each checked (unless ``check`` is False: the
        operator's own proxy); cached for a minute."""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            if check:
                self._check_addresses(host, [host])
            return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, host)]
        now = time.monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            addresses = cached[1]
        else:
            try:
                infos = await getaddrinfo(host, port)
            except socket.gaierror as error:
                raise ConnectError(host, error) from None
            addresses = list(dict.fromkeys((info[0], info[4][0]) for info in infos))
            self._dns[(host, port)] = (now + DNS_TTL, addresses)
        if check:
            self._check_addresses(host, [address for _, address in addresses])
        return addresses


class _TunnelHandshake(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``: a status line and headers, no body."""

    LIMIT = 64 * 1024

    def __init__(self) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._received = b""

    def data_received(self, data: bytes) -> None:
        if self.status.done():
            return
        self._received += data
        if b"\r\n\r\n" not in self._received and len(self._received) < self.LIMIT:
            return
        version, _, rest = self._received.partition(b" ")
        code = rest[:3]
        valid = version.startswith(b"HTTP/1.") and code.isdigit()
        self.status.set_result(int(code) if valid else 0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(
                ConnectionResetError("the outbound proxy closed the connection")
            )


def announced_idle_timeout(value: bytes) -> float | None:
    """The ``timeout`` of a ``Keep-Alive`` header (``timeout=5, max=1000``), in seconds."""
    for part in value.split(b","):
        name, _, number = part.partition(b"=")
        if name.strip().lower() == b"timeout":
            try:
                seconds = float(number.strip())
            except ValueError:
                return None
            return seconds if 0 <= seconds < float("inf") else None
    return None


def getaddrinfo(host: str, port: int) -> Awaitable[list[Any]]:
    """The name lookup (a seam for tests that need a name to resolve somewhere)."""
    return asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
