"""Rules for what an admin or developer may type as a key or a base URL.

Messages never contain the key: they may end up in logs, responses or command output.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from lib.text import describe, unsafe_character

MAX_KEY_BYTES = 10_240


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


# Cloud metadata endpoints; the whole link-local range is refused as well.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local: AWS, GCP, Azure, OCI, DigitalOcean
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("192.0.0.192/32"),  # Oracle Cloud (classic)
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS IMDS over IPv6
)
# IPv6 prefixes that embed an IPv4 address in their last 32 bits (NAT64, RFC 6052 / 8215).
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def normalize_host(host: str) -> str | Address | None:
    """The host as a resolver sees it: an IP address (from any notation) or a lowercase DNS
    name without the trailing dot; None when it is neither."""
    host = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        # inet_aton reads "2852039166", "0xA9FEA9FE", "0251.0376.0251.0376" and
        # "169.254.43518" as 169.254.169.254, as the C library's resolver does.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    try:
        ascii_host = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        return None
    if not ascii_host or len(ascii_host) > 253:
        return None
    if not all(_HOST_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        return None
    return ascii_host


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if any (mapped, compatible, NAT64, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if packed[:12] == bytes(12) and packed[12:] != bytes(4) and int(address) > 1:
        return ipaddress.IPv4Address(packed[12:])  # IPv4-compatible (::a.b.c.d)
    if any(address in network for network in NAT64_NETWORKS):
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_metadata_address(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and is_metadata_address(inner):
            return True
    return any(address in network for network in METADATA_NETWORKS)


def is_metadata_host(host: str | Address) -> bool:
    if isinstance(host, str):
        return host in METADATA_HOSTS
    return is_metadata_address(host)


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def validate_region(value: str) -> None:
    if value and not _REGION.fullmatch(value):
        raise ValidationError(
            "Enter a region name such as us-east-1 or eu-central-1.", code="region"
        )
