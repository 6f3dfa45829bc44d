"""Rules for what an admin or developer may type as a key or a base URL.

Messages never contain the key: they may end up in logs, responses or command output.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from lib.netguard import is_metadata_host, normalize_host
from lib.text import describe, unsafe_character

MAX_KEY_BYTES = 10_240
KEY_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}")


def validate_key_label(label: str) -> None:
    if not KEY_LABEL.fullmatch(label or "") or label != label.strip():
        raise ValidationError(
            "A label is 1 to 40 letters, digits, spaces, dots, dashes or underscores, "
            "starting with a letter or digit (e.g. team-a, backup).",
            code="invalid_label",
        )


def validate_api_key(raw: str) -> None:
    if raw == "":
        raise ValidationError("Enter an API key.", code="required")
    if raw != raw.strip():
        raise ValidationError(
            "The key starts or ends with whitespace; paste it without spaces or line breaks.",
            code="whitespace",
        )
    if len(raw.encode()) > MAX_KEY_BYTES:
        raise ValidationError(f"The key is longer than {MAX_KEY_BYTES:,} bytes.", code="too_long")
    # It is sent in an HTTP header: printable ASCII only, and no spaces.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise ValidationError(
            "The key contains control characters (such as a line break).", code="control"
        )
    if not all(33 <= ord(ch) <= 126 for ch in raw):
        raise ValidationError(
            "A key is printable ASCII without spaces (letters, digits and punctuation); this "
            "one has other characters. Copy it again from the provider's console.",
            code="not_ascii",
        )


def validate_base_url(url: str) -> None:
    ch = unsafe_character(url)
    if ch is not None or " " in url:
        raise ValidationError(
            f"The base URL contains {describe(ch) if ch else 'a space'}; type it again "
            "without invisible characters.",
            code="control",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL such as https://api.example.com/v1.") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("The base URL must start with http:// or https://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("The base URL needs a host name.", code="host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(
            "Credentials are not allowed in the base URL; enter the key in the API key field.",
            code="userinfo",
        )
    if parts.query or parts.fragment:
        raise ValidationError("The base URL cannot have a query string or fragment.", code="query")
    if port == 0:
        raise ValidationError("Enter a valid port.", code="port")
    host = normalize_host(parts.hostname)
    if host is None:
        raise ValidationError("The base URL's host is not a valid host name.", code="host")
    if not settings.ALLOW_LINK_LOCAL_BASE_URLS and is_metadata_host(host):
        raise ValidationError(
            "Link-local and cloud metadata addresses are not allowed as a base URL.",
            code="link_local",
        )


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def validate_region(value: str) -> None:
    if value and not _REGION.fullmatch(value):
        raise ValidationError(
            "Enter a region name such as us-east-1 or eu-central-1.", code="region"
        )
