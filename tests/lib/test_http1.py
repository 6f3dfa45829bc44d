"""The outbound HTTP/1.1 client against scripted servers on loopback: what it sends, how it
reads every framing of an answer, keep-alive and its limits, timeouts, TLS and the guard."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import quote

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from lib import http1
from lib.http1 import ConnectError, Pool, ProtocolError, ServerDisconnected, Timeout

FAST = Timeout(connect=2, read=2)
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


def allow_all(host: str, addresses: list[str]) -> None:
    return None


class Script:
    """A loopback server that reads each request head (and body) and runs ``answer``."""

    def __init__(
        self,
        answer: Callable[[Script, asyncio.StreamWriter, bytes], Awaitable[Any]],
        idle_timeout: float | None = None,
    ):
        self.answer = answer
        self.idle_timeout = idle_timeout  # closes a connection idle this long, as uvicorn does
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[Any]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        head = await reader.readuntil(b"\r\n\r\n")
                except TimeoutError:
                    break
                if await self.took_over(head, reader, writer):
                    break
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(request)
                if await self.answer(self, writer, request) == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def took_over(self, head: bytes, reader: Any, writer: Any) -> bool:
        """Whether this request head is handled otherwise, to the end of the connection."""
        return False

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for handler in self.handlers:
            handler.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


def answer_with(raw: bytes, then: str = "") -> Callable[..., Awaitable[str]]:
    async def answer(script: Script, writer: asyncio.StreamWriter, request: bytes) -> str:
        writer.write(raw)
        await writer.drain()
        return then

    return answer


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(main())


def test_a_request_is_sent_as_given_and_the_connection_is_kept():
    async def main():
        script = Script(answer_with(OK))
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            for _ in range(3):
                response = await pool.request(
                    "POST",
                    f"{url}/v1/models/a model:generateContent?alt=sse",
                    headers={"authorization": "Bearer k", "content-type": "application/json"},
                    data=b'{"a":1}',
                    timeout=FAST,
                )
                assert response.status == 200 and await response.read() == b"{}"
                assert response.headers["content-type"] == "application/json"
                response.release()
            await pool.close()
        return script

    script = run(main)
    assert script.connections == 1  # kept alive between the calls
    first = script.requests[0]
    assert first.startswith(b"POST /v1/models/a%20model:generateContent?alt=sse HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer k\r\n" in first
    assert b"\r\naccept-encoding: identity\r\n" in first  # no compression asked for
    assert b"\r\ncontent-length: 7\r\n" in first and first.endswith(b'{"a":1}')
    assert b"user-agent" not in first.lower()


@pytest.mark.parametrize(
    "raw",
    [
        # chunked
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        # no length: the body runs until the server closes
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello world",
        # an interim answer first
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world",
        # gzip, although identity was asked for
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s"
        % (len(gzip.compress(b"hello world")), gzip.compress(b"hello world")),
    ],
    ids=["chunked", "until-close", "interim", "gzip"],
)
def test_every_framing_of_a_body_is_read(raw):
    async def main():
        async with Script(answer_with(raw, then="close")) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            body = await response.read()
            response.release()
            await pool.close()
            return response.status, body

    assert run(main) == (200, b"hello world")


def test_a_stream_arrives_chunk_by_chunk():
    async def answer(script, writer, request):
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for index in range(3):
            writer.write(b"6\r\nchunk%d\r\n" % index)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        return "close"

    async def main():
        async with Script(answer) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            chunks = [chunk async for chunk in response.iter_chunks()]
            response.release()
            await pool.close()
            return chunks

    assert run(main) == [b"chunk0", b"chunk1", b"chunk2"]


def dropping_each_second_request() -> Callable[..., Awaitable[str]]:
    """Answers the first request on a connection; closes it, unanswered, on the second."""
    served: dict[int, int] = {}

    async def answer(script: Script, writer: asyncio.StreamWriter, request: bytes) -> str:
        count = served[id(writer)] = served.get(id(writer), 0) + 1
        if count == 2:
            return "close"
        writer.write(OK)
        await writer.drain()
        return ""

    return answer


def test_a_kept_connection_the_server_closed_is_replaced_without_failing_the_call():
    """The race of keep-alive: the server drops an idle connection just as a request goes out
    on it. The request never reached it, so it is sent again on a new connection."""

    async def main():
        script = Script(dropping_each_second_request())
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            for _ in range(3):
                response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
                assert await response.read() == b"{}"
                response.release()
            await pool.close()
        return script

    script = run(main)
    # The 2nd and the 3rd calls each met a dropped connection and were sent again.
    assert script.connections == 3 and len(script.requests) == 5


def test_a_post_the_provider_may_have_received_is_never_sent_twice():
    """The same race for a model call: the request went out, so it is not repeated."""

    async def main():
        script = Script(dropping_each_second_request())
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("POST", url, headers={}, data=b"{}", timeout=FAST)
            await response.read()
            response.release()
            with pytest.raises(ServerDisconnected):
                await pool.request("POST", url, headers={}, data=b"{}", timeout=FAST)
            await pool.close()
        return script

    assert len(run(main).requests) == 2  # once each: the second was not repeated


@pytest.mark.parametrize(
    ("raw", "error"),
    [(b"", ServerDisconnected), (b"SMTP ready\r\n\r\n", ProtocolError)],
    ids=["fresh-connection-dropped", "not-http"],
)
def test_an_answer_that_never_comes_or_is_not_http_is_an_error(raw, error):
    async def main():
        async with Script(answer_with(raw, then="close")) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            with pytest.raises(error):
                await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            await pool.close()

    run(main)


def test_an_answer_cut_short_is_an_error_and_the_connection_is_not_reused():
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"

    async def main():
        script = Script(answer_with(raw, then="close"))
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            with pytest.raises(ServerDisconnected):
                await response.read()
            response.release()
            assert not pool._idle.get(("http", "127.0.0.1", int(url.rsplit(":", 1)[1])))
            await pool.close()

    run(main)


def test_a_chunked_answer_cut_short_is_an_error_not_a_complete_body():
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n wo"

    async def main():
        async with Script(answer_with(raw, then="close")) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            with pytest.raises(ServerDisconnected):
                await response.read()
            response.release()
            streamed = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            with pytest.raises(ServerDisconnected):
                async for _ in streamed.iter_chunks():
                    pass
            streamed.release()
            await pool.close()

    run(main)


def test_an_interim_answer_then_the_final_one_later_gives_the_final_one():
    """103 Early Hints in one packet, the answer in another a moment later."""

    async def answer(script, writer, request):
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-final: yes\r\n\r\nfinal")
        await writer.drain()
        return "close"

    async def main():
        async with Script(answer) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            body = await response.read()
            response.release()
            await pool.close()
            return response.status, response.raw_headers, body

    status, headers, body = run(main)
    assert (status, body) == (201, b"final")
    assert (b"x-final", b"yes") in headers and all(name != b"link" for name, _ in headers)


def test_a_repeated_answer_header_keeps_all_its_values():
    raw = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-ratelimit-note: a\r\n"
        b"X-Ratelimit-Note: b\r\nset-cookie: c=1\r\nset-cookie: d=2\r\n\r\n{}"
    )

    async def main():
        async with Script(answer_with(raw, then="close")) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            await response.read()
            response.release()
            await pool.close()
            return response

    response = run(main)
    assert [v for n, v in response.raw_headers if n == b"x-ratelimit-note"] == [b"a", b"b"]
    assert [v for n, v in response.raw_headers if n == b"set-cookie"] == [b"c=1", b"d=2"]
    assert response.headers["x-ratelimit-note"] == "a, b"


def test_silence_is_a_read_timeout():
    async def answer(script, writer, request):
        await asyncio.sleep(5)

    async def main():
        async with Script(answer) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await pool.request(
                    "GET", url, headers={}, data=None, timeout=Timeout(connect=1, read=0.3)
                )
            waited = loop.time() - started
            await pool.close()
            return waited

    assert 0.3 <= run(main) < 1.5


def test_a_closed_port_is_a_connect_error_that_says_refused():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        pool = Pool(limit=10, check_addresses=allow_all)
        with pytest.raises(ConnectError) as raised:
            await pool.request(
                "GET", f"http://127.0.0.1:{port}/", headers={}, data=None, timeout=FAST
            )
        await pool.close()
        return raised.value

    assert isinstance(run(main).os_error, ConnectionRefusedError)


@pytest.mark.parametrize(
    "headers",
    [{"x-a": "1\r\nx-injected: 2"}, {"x-a": "1\nx"}, {"bad name": "1"}, {"x-a": "snow \u2603"}],
)
def test_a_header_that_cannot_be_sent_is_refused_before_connecting(headers):
    async def main():
        pool = Pool(limit=10, check_addresses=allow_all)
        with pytest.raises(ValueError) as raised:
            await pool.request(
                "GET", "http://127.0.0.1:9/", headers=headers, data=None, timeout=FAST
            )
        assert "\u2603" not in str(raised.value) and "injected" not in str(raised.value)
        assert not pool._all

    run(main)


def test_only_http_and_https_urls_are_called():
    async def main():
        pool = Pool(limit=10, check_addresses=allow_all)
        for url in ("ftp://example.com/", "file:///etc/passwd", "http:///nohost"):
            with pytest.raises(ValueError):
                await pool.request("GET", url, headers={}, data=None, timeout=FAST)

    run(main)


def test_no_more_than_the_limit_of_connections_are_open_and_the_rest_wait():
    async def answer(script, writer, request):
        await asyncio.sleep(0.05)
        writer.write(OK)
        await writer.drain()

    async def main():
        script = Script(answer)
        async with script as url:
            pool = Pool(limit=2, check_addresses=allow_all)
            most = 0

            async def one():
                nonlocal most
                response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
                most = max(most, len(pool._all))
                await response.read()
                response.release()

            await asyncio.gather(*(one() for _ in range(10)))
            await pool.close()
        return script, most

    script, most = run(main)
    assert script.connections == 2 and most <= 2 and len(script.requests) == 10


def test_a_slow_reader_pauses_the_connection_instead_of_buffering_everything():
    size = 8 * http1.HIGH_WATER

    async def answer(script, writer, request):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        return "close"

    async def main():
        async with Script(answer) as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            await asyncio.sleep(0.3)  # the reader is busy elsewhere
            buffered = response._buffered
            total = sum([len(chunk) async for chunk in response.iter_chunks()])
            response.release()
            await pool.close()
            return buffered, total

    buffered, total = run(main)
    assert total == size
    assert buffered < 4 * http1.HIGH_WATER  # far from the whole body


def test_idle_connections_past_their_keep_alive_are_closed():
    async def main():
        script = Script(answer_with(OK))
        async with script as first, Script(answer_with(OK)) as second:
            pool = Pool(limit=10, check_addresses=allow_all, keepalive=0.2)
            for url in (first, second):
                response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
                await response.read()
                response.release()
            assert len(pool._all) == 2
            await asyncio.sleep(0.3)
            response = await pool.request("GET", first, headers={}, data=None, timeout=FAST)
            await response.read()
            response.release()  # the one for the other origin went here
            assert len(pool._all) == 1
            await pool.close()
        return script

    assert run(main).connections == 2  # the expired one was not reused either


def test_a_connection_retires_before_the_idle_limit_the_server_announces():
    announcing = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1, max=100\r\ncontent-length: 2\r\n\r\n{}"

    async def main():
        script = Script(answer_with(announcing))
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            for pause in (0.0, 0.5, 0.9):
                await asyncio.sleep(pause)
                response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
                await response.read()
                response.release()
            await pool.close()
        return script

    # Reused after 0.5 s; not after 0.9 s, within a second but past 80 % of it.
    assert run(main).connections == 2


def test_a_server_that_closed_an_idle_connection_has_the_next_ones_retire_before_that():
    async def main():
        script = Script(answer_with(OK), idle_timeout=1.2)  # announces nothing
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            for pause in (0.0, 1.4, 1.05):
                await asyncio.sleep(pause)
                response = await pool.request("POST", url, headers={}, data=b"{}", timeout=FAST)
                assert response.status == 200
                await response.read()
                response.release()
            await pool.close()
        return script

    # The first connection is closed by the server after 1.2 s idle. The second is not reused
    # after 1.05 s: alive still, but as close to the server's limit as a POST should get.
    assert run(main).connections == 3


@given(st.binary(max_size=40))
def test_any_keep_alive_header_gives_a_usable_timeout_or_none(value):
    seconds = http1.announced_idle_timeout(value)
    assert seconds is None or 0 <= seconds < float("inf")


def test_closing_an_answer_closes_its_connection():
    async def answer(script, writer, request):
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)
        return "close"

    async def main():
        script = Script(answer)
        async with script as url:
            pool = Pool(limit=10, check_addresses=allow_all)
            response = await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            async for _ in response.iter_chunks():
                break
            response.close()
            assert not pool._all
            await pool.close()

    run(main)


# -- the guard and names ---------------------------------------------------------------------


def test_the_check_sees_every_address_a_name_resolves_to_and_refusal_stops_the_call(monkeypatch):
    seen = []

    async def two_addresses(host, port):
        return [(2, 1, 6, "", ("10.0.0.1", port)), (2, 1, 6, "", ("169.254.169.254", port))]

    def refuse_metadata(host: str, addresses: list[str]) -> None:
        seen.append((host, addresses))
        if "169.254.169.254" in addresses:
            raise PermissionError(host)

    monkeypatch.setattr(http1, "getaddrinfo", two_addresses)

    async def main():
        pool = Pool(limit=10, check_addresses=refuse_metadata)
        for url in ("http://rebinding.example/", "http://169.254.169.254/"):
            with pytest.raises(PermissionError):
                await pool.request("GET", url, headers={}, data=None, timeout=FAST)
        assert not pool._all

    run(main)
    assert seen == [
        ("rebinding.example", ["10.0.0.1", "169.254.169.254"]),
        ("169.254.169.254", ["169.254.169.254"]),
    ]


def test_a_name_that_does_not_resolve_is_a_connect_error():
    async def main():
        pool = Pool(limit=10, check_addresses=allow_all)
        with pytest.raises(ConnectError) as raised:
            await pool.request(
                "GET", "http://no-such-host.invalid/", headers={}, data=None, timeout=FAST
            )
        return raised.value

    import socket

    assert isinstance(run(main).os_error, socket.gaierror)


# -- TLS ----------------------------------------------------------------------------------


def self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


async def tls_origin(cert: str, key: str) -> tuple[Script, asyncio.Server, int]:
    """A Script answering OK over TLS on loopback, and its server and port."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    script = Script(answer_with(OK))
    server = await asyncio.start_server(script._serve, "127.0.0.1", 0, ssl=server_context)
    return script, server, server.sockets[0].getsockname()[1]


def tls_call(cert: str, key: str) -> Any:
    async def main():
        script, server, port = await tls_origin(cert, key)
        pool = Pool(limit=10, check_addresses=allow_all)
        try:
            response = await pool.request(
                "GET", f"https://localhost:{port}/v1/models", headers={}, data=None, timeout=FAST
            )
            body = await response.read()
            response.release()
            return response.status, body, script.requests[0]
        finally:
            await pool.close()
            server.close()

    return run(main)


def test_an_untrusted_certificate_is_refused(tmp_path):
    cert, key = self_signed(tmp_path)
    with pytest.raises(ConnectError) as raised:
        tls_call(cert, key)
    assert isinstance(raised.value.os_error, ssl.SSLCertVerificationError)


def test_a_trusted_certificate_is_accepted_and_the_name_is_checked(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    trusting = ssl.create_default_context(cafile=cert)
    monkeypatch.setattr(http1, "_tls_context", lambda: trusting)
    status, body, request = tls_call(cert, key)
    assert (status, body) == (200, b"{}")
    assert b"\r\nhost: localhost:" in request


# -- anything typed ----------------------------------------------------------------------


@given(path=st.text(max_size=60))
def test_any_path_becomes_a_request_target_without_spaces_or_controls(path):
    _, target, _ = http1.split_url("http://example.com/" + path.replace("?", "").replace("#", ""))
    assert target.isascii() and target.isprintable() and " " not in target
    # Escapes already made are kept, so quoting twice changes nothing.
    assert http1._requote(target) == target


@given(headers=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=30), max_size=4))
def test_any_header_is_sent_on_its_own_line_or_refused(headers):
    """The same either way the second time (names found valid once are remembered)."""
    try:
        head = http1.request_head("POST", "/v1", "example.com", headers, b"{}")
    except ValueError:
        with pytest.raises(ValueError):
            http1.request_head("POST", "/v1", "example.com", headers, b"{}")
        return
    assert http1.request_head("POST", "/v1", "example.com", headers, b"{}") == head
    lines = head.split(b"\r\n")
    # request line, host, each header, accept-encoding (unless given), content-length, and
    # the empty line that ends the head (split leaves one more empty piece after it)
    accept_encoding = 0 if "accept-encoding" in headers else 1
    assert len(lines) == 1 + 1 + len(headers) + accept_encoding + 1 + 2
    assert all(b"\n" not in line and b"\r" not in line for line in lines)


def test_an_ipv6_literal_is_called_with_its_brackets_in_the_host_header():
    async def main():
        script = Script(answer_with(OK))
        try:
            server = await asyncio.start_server(script._serve, "::1", 0)
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = server.sockets[0].getsockname()[1]
        pool = Pool(limit=10, check_addresses=allow_all)
        response = await pool.request(
            "GET", f"http://[::1]:{port}/v1", headers={}, data=None, timeout=FAST
        )
        body = await response.read()
        response.release()
        await pool.close()
        server.close()
        return body, script.requests[0]

    body, request = run(main)
    assert body == b"{}" and b"\r\nhost: [::1]:" in request


# -- through a proxy ----------------------------------------------------------------------


class ForwardProxy(Script):
    """A loopback HTTP proxy: ``CONNECT`` opens a tunnel to the named port on loopback
    (or is refused with ``refuse``); any other request it answers itself, as an origin
    would, after recording it."""

    def __init__(self, refuse: int = 0) -> None:
        super().__init__(answer_with(OK))
        self.refuse = refuse
        self.tunnelled = bytearray()  # every byte the client sent through a tunnel

    async def took_over(self, head: bytes, reader: Any, writer: Any) -> bool:
        if not head.startswith(b"CONNECT "):
            return False
        self.requests.append(head)
        if self.refuse:
            writer.write(b"HTTP/1.1 %d No\r\ncontent-length: 0\r\n\r\n" % self.refuse)
            await writer.drain()
            return True
        port = int(head.split(b" ")[1].rsplit(b":", 1)[1])
        origin_reader, origin_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(source: Any, sink: Any, record: bool) -> None:
            while data := await source.read(65536):
                if record:
                    self.tunnelled += data
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(
            pipe(reader, origin_writer, True),
            pipe(origin_reader, writer, False),
            return_exceptions=True,
        )
        return True

    async def __aenter__(self) -> http1.Proxy:  # type: ignore[override]
        url = await super().__aenter__()
        return http1.Proxy.from_url(url.replace("http://", "http://alice:proxy-canary@"))


def unresolvable(monkeypatch) -> list[str]:
    """Names do not resolve here (as on a host whose only way out is the proxy); returns
    the names asked."""
    asked: list[str] = []

    async def no_dns(host: str, port: int) -> list[Any]:
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(http1, "getaddrinfo", no_dns)
    return asked


PROXY_AUTHORIZATION = b"proxy-authorization: Basic YWxpY2U6cHJveHktY2FuYXJ5\r\n"


async def post_twice(proxy: http1.Proxy, url: str, headers: dict[str, str]) -> None:
    """Two calls through ``proxy`` on one pool, each answered 200 {}."""
    pool = Pool(limit=4, check_addresses=allow_all, proxy_for=lambda origin: proxy)
    try:
        for _ in range(2):
            response = await pool.request("POST", url, headers=headers, data=b"{}", timeout=FAST)
            assert (response.status, await response.read()) == (200, b"{}")
            response.release()
    finally:
        await pool.close()


def test_an_http_origin_is_asked_of_the_proxy_in_absolute_form(monkeypatch):
    asked = unresolvable(monkeypatch)

    async def main():
        forward = ForwardProxy()
        async with forward as proxy:
            await post_twice(
                proxy,
                "http://models.internal:8080/v1/chat/completions",
                {"authorization": "Bearer sk-user"},
            )
        return forward

    forward = run(main)
    head = forward.requests[0]
    assert head.startswith(b"POST http://models.internal:8080/v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nhost: models.internal:8080\r\n" in head
    assert PROXY_AUTHORIZATION in head
    assert (len(forward.requests), forward.connections) == (2, 1)  # kept alive
    assert asked == ["models.internal"]


def test_a_name_that_does_not_resolve_here_is_not_asked_again_for_each_connection(monkeypatch):
    asked = unresolvable(monkeypatch)

    async def main():
        forward = ForwardProxy()
        async with forward as proxy:
            pool = Pool(limit=4, check_addresses=allow_all, proxy_for=lambda origin: proxy)
            try:
                for _ in range(3):
                    response = await pool.request(
                        "GET",
                        "http://models.internal/v1/models",
                        headers={},
                        data=None,
                        timeout=FAST,
                    )
                    await response.read()
                    response.close()  # the next call needs a new connection
            finally:
                await pool.close()
        return forward

    forward = run(main)
    assert forward.connections == 3 and asked == ["models.internal"]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # the server runs on uvloop
def test_an_https_origin_is_reached_through_a_tunnel_with_tls_end_to_end(
    tmp_path, monkeypatch, loop
):
    cert, key = self_signed(tmp_path)
    trusting = ssl.create_default_context(cafile=cert)
    monkeypatch.setattr(http1, "_tls_context", lambda: trusting)

    async def main():
        origin, server, port = await tls_origin(cert, key)
        forward = ForwardProxy()
        try:
            async with forward as proxy:
                await post_twice(
                    proxy,
                    f"https://localhost:{port}/v1/messages",
                    {"x-api-key": "sk-ant-tunnel-canary"},
                )
        finally:
            server.close()
        return port, forward, origin

    port, forward, origin = uvloop.run(main()) if loop == "uvloop" else run(main)
    assert forward.requests == [
        f"CONNECT localhost:{port} HTTP/1.1\r\nhost: localhost:{port}\r\n".encode()
        + PROXY_AUTHORIZATION
        + b"\r\n"
    ]
    assert len(origin.requests) == 2  # both on the one tunnel
    assert origin.requests[0].startswith(b"POST /v1/messages HTTP/1.1\r\n")
    assert b"x-api-key: sk-ant-tunnel-canary" in origin.requests[0]
    assert b"proxy-authorization" not in origin.requests[0]
    # The proxy carried only ciphertext.
    assert forward.tunnelled and b"sk-ant-tunnel-canary" not in forward.tunnelled


def test_a_proxy_that_refuses_the_tunnel_is_a_connect_error_that_shows_no_credentials(
    monkeypatch,
):
    unresolvable(monkeypatch)

    async def main():
        async with ForwardProxy(refuse=407) as proxy:
            pool = Pool(limit=4, check_addresses=allow_all, proxy_for=lambda origin: proxy)
            try:
                with pytest.raises(ConnectError) as raised:
                    await pool.request(
                        "GET",
                        "https://api.example.com/v1/models",
                        headers={},
                        data=None,
                        timeout=FAST,
                    )
            finally:
                await pool.close()
        return raised.value, proxy

    error, proxy = run(main)
    assert isinstance(error.os_error, http1.ProxyRefused) and error.os_error.status == 407
    assert "407" in str(error.os_error)
    for text in (str(error), repr(error), str(error.os_error), repr(proxy)):
        assert "proxy-canary" not in text and "YWxpY2U6cHJveHktY2FuYXJ5" not in text


def refused_behind_a_proxy(url: str) -> tuple[list[str], ForwardProxy]:
    """Call ``url`` through a loopback proxy with a guard refusing 169.254.169.254: the
    hosts the guard refused, and the proxy (to see whether it was asked)."""
    refused: list[str] = []

    def no_metadata(host: str, addresses: list[str]) -> None:
        if "169.254.169.254" in addresses:
            refused.append(host)
            raise PermissionError(host)

    async def main():
        forward = ForwardProxy()
        async with forward as proxy:
            pool = Pool(limit=4, check_addresses=no_metadata, proxy_for=lambda origin: proxy)
            try:
                with pytest.raises(PermissionError):
                    await pool.request("GET", url, headers={}, data=None, timeout=FAST)
            finally:
                await pool.close()
        return forward

    return refused, run(main)


def test_behind_a_proxy_the_guard_still_refuses_what_it_can_see():
    refused, forward = refused_behind_a_proxy("http://169.254.169.254/latest/meta-data/")
    assert refused == ["169.254.169.254"]
    assert forward.connections == 0  # the proxy was never asked


@pytest.mark.parametrize(
    "url",
    ["http://169\u3002254\u3002169\u3002254/latest", "https://\uff11\uff16\uff19.254.169.254/"],
    ids=["ideographic-dots", "full-width-digits"],
)
def test_behind_a_proxy_a_host_in_unicode_notation_is_read_as_its_address_first(monkeypatch, url):
    """Where names do not resolve here, the name goes to the proxy as it is: so it is read as
    resolvers read it (IDNA) before, and a metadata address is refused, the proxy unasked."""
    unresolvable(monkeypatch)
    refused, forward = refused_behind_a_proxy(url)
    assert refused == ["169.254.169.254"]
    assert forward.connections == 0


def test_a_unicode_host_is_sent_as_its_ascii_name():
    origin, _, host_header = http1.split_url("https://b\u00fccher.example:8443/v1")
    assert origin == ("https", "xn--bcher-kva.example", 8443)
    assert host_header == "xn--bcher-kva.example:8443"


@given(user=st.text(max_size=20), password=st.text(max_size=20))
def test_any_proxy_credentials_become_basic_authorization_and_never_show(user, password):
    url = f"http://{quote(user, safe='')}:{quote(password, safe='')}@proxy.corp:3128"
    proxy = http1.Proxy.from_url(url)
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    scheme, _, token = proxy.authorization.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == f"{user}:{password}"
    assert repr(proxy) == "Proxy(host='proxy.corp', port=3128)"
