"""Removing a provider key from whatever a provider sends back, in every form a reader could
turn back into the key.

Some providers (and proxies in front of them) quote the key they were sent: whole, masked to
its last characters (``sk-****...abcd``), with JSON's ``\\uXXXX`` or ``\\/`` escapes (which
every JSON parser decodes back), or percent-encoded (in a URL inside a message or a header).
``Scrubber.clean`` removes all of these from a body, a header value or a decoded text;
``StreamScrubber`` does the same to a stream without ever letting a key through split across
two chunks. The gateway, the direct chat route, the connection test and discovery all use
these, so no path shows or stores what another path hides.

The common case costs a few byte searches: the slower forms are looked for only when the
text holds an escape (``\\u``, ``\\/``, ``%``) or a mask (``***``, ``...``, ``…``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote_to_bytes

REDACTED = b"********"
# Shorter secrets are not looked for: a test key of a few characters would match everywhere.
MIN_SECRET = 8
# What a masked key shows of its end, and how masks are drawn.
MASKED_TAIL = 4
_MASK_MARKS = (b"***", b"...", "…".encode())
_JSON_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})|\\/")
# A stream's bytes are held back from the last line break on (a key cannot span a line of
# an event); a line longer than this is let through but for its last bytes.
MAX_HELD = 64 * 1024


def _decode_json_escape(found: re.Match[bytes]) -> bytes:
    if found.group(1) is None:
        return b"/"
    return chr(int(found.group(1), 16)).encode("utf-8", "surrogatepass")


def _hex_either_case(number: int, width: int) -> bytes:
    return b"".join(
        f"[{digit.lower()}{digit.upper()}]".encode() if digit.isalpha() else digit.encode()
        for digit in f"{number:0{width}x}"
    )


@lru_cache(maxsize=64)
def _patterns(secret: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """(the key in any mix of its plain, JSON-escaped and percent-encoded characters; a
    masked form of it)."""
    characters = []
    for ch in secret:
        forms = [re.escape(ch.encode()), rb"\\u" + _hex_either_case(ord(ch), 4)]
        if ord(ch) < 0x80:
            forms.append(b"%" + _hex_either_case(ord(ch), 2))
        if ch == "/":
            forms.append(rb"\\/")
        characters.append(b"(?:" + b"|".join(forms) + b")")
    whole = re.compile(b"".join(characters))
    tail = re.escape(secret[-MASKED_TAIL:].encode())
    masked = re.compile(rb"[\w-]{0,40}(?:\*{3,}|\.{3,}|" + re.escape("…".encode()) + rb")" + tail)
    return whole, masked


class Scrubber:
    """Removes one secret from what a provider sent back (a no-op without a secret).

    ``Scrubber.of(secret)`` gives the same one each time for a secret (the gateway makes one
    per call: the key is already held decrypted in this process, see gateway.store)."""

    __slots__ = ("_secret", "_tail", "_text")

    def __init__(self, secret: str | None) -> None:
        self._text = secret if secret and len(secret) >= MIN_SECRET else ""
        self._secret = self._text.encode()
        self._tail = self._secret[-MASKED_TAIL:]

    @staticmethod
    def of(secret: str | None) -> Scrubber:
        return _scrubber_of(secret or "")

    def __bool__(self) -> bool:
        return bool(self._secret)

    def suspects(self, content: bytes) -> bool:
        """Whether ``content`` may hold the secret in some form (False: it surely does not):
        its last characters (the key, or a mask of it), or the start of an escape."""
        return bool(self._secret) and (self._tail in content or b"\\" in content or b"%" in content)

    def clean(self, content: bytes) -> bytes:
        """``content`` without the secret in any of its forms. Three byte searches when it
        holds none of them, the usual case: the key's last characters (neither the key nor a
        mask of it is there without them), a backslash and a percent sign (any escape starts
        with one). (A regular expression doing all three cost more than the three.)"""
        secret = self._secret
        if not secret:
            return content
        tail = self._tail in content  # the key ends so: neither it nor a mask is here without
        if tail and secret in content:
            content = content.replace(secret, REDACTED)
        if (b"\\" in content or b"%" in content) and self._hidden_in_escapes(content):
            content = _patterns(self._text)[0].sub(REDACTED, content)
        if tail and any(mark in content for mark in _MASK_MARKS):
            content = _patterns(self._text)[1].sub(REDACTED, content)
        return content

    def clean_text(self, content: str) -> str:
        if not self._secret:
            return content
        return self.clean(content.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")

    def _hidden_in_escapes(self, content: bytes) -> bool:
        """Whether the secret is in ``content`` once its escapes are decoded (a cheap test
        before the pattern that finds it whatever mix of forms it is written in)."""
        decoded = content
        if b"\\u" in decoded or b"\\/" in decoded:
            decoded = _JSON_ESCAPE.sub(_decode_json_escape, decoded)
        if b"%" in decoded:
            decoded = unquote_to_bytes(decoded)
        return self._secret in decoded


@lru_cache(maxsize=256)
def _scrubber_of(secret: str) -> Scrubber:
    return Scrubber(secret)


class StreamScrubber:
    """A ``Scrubber`` for a stream cut into chunks anyhow: each chunk is let through up to
    its last line break, the rest held until the next, so a key split across two chunks is
    still found whole. Events end with a line break, so nothing waits on a whole event."""

    __slots__ = ("_held", "_scrub")

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrub = scrubber
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._held:
            chunk, self._held = self._held + chunk, b""
        if chunk[-1:] != b"\n":  # (events end with a line break: this is rare)
            end = chunk.rfind(b"\n") + 1
            if end == 0 and len(chunk) > MAX_HELD:
                end = len(chunk) - MAX_HELD // 2  # one very long line: hold only its last part
            chunk, self._held = chunk[:end], chunk[end:]
            if not chunk:
                return b""
        scrub = self._scrub
        return scrub.clean(chunk) if scrub.suspects(chunk) else chunk

    def finish(self) -> bytes:
        rest, self._held = self._held, b""
        return self._scrub.clean(rest) if rest else b""
