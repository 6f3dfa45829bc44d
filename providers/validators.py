"""Rules for what an admin or developer may type as a key or a base URL.

Messages never contain the key: they may end up in logs, responses or command output.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_KEY_BYTES = 10_240

# Cloud metadata endpoints; the link-local range as a whole is refused as well.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.azure.internal"})
METADATA_ADDRESSES = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
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
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise ValidationError(
            "The key contains control characters (such as a line break).", code="control"
        )


def validate_base_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL such as https://api.example.com/v1.") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("The base URL must start with http:// or https://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("The base URL needs a host name.", code="host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Credentials are not allowed in the base URL; enter the key in the API key field.",
            code="userinfo",
        )
    if parts.query or parts.fragment:
        raise ValidationError("The base URL cannot have a query string or fragment.", code="query")
    if port == 0:
        raise ValidationError("Enter a valid port.", code="port")
    if not settings.ALLOW_LINK_LOCAL_BASE_URLS and _is_metadata_host(parts.hostname):
        raise ValidationError(
            "Link-local and cloud metadata addresses are not allowed as a base URL.",
            code="link_local",
        )


def _is_metadata_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in METADATA_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in METADATA_ADDRESSES)


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def validate_region(value: str) -> None:
    if value and not _REGION.fullmatch(value):
        raise ValidationError(
            "Enter a region name such as us-east-1 or eu-central-1.", code="region"
        )
