"""Which addresses a provider base URL may point at, judged the way resolvers read them.

Used twice: when an admin saves a base URL (the host as typed, in any notation) and when a
request is sent (every address the name resolves to, see ``lib.outbound``). Private ranges
stay allowed, since self-hosted models live there; link-local and cloud metadata do not.
"""

from __future__ import annotations

import ipaddress
import re
import socket

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


def normalize_host(host: str) -> str | Address | None:
    """The host as a resolver sees it: an IP address (from any notation) or a lowercase DNS
    name without the trailing dot; None when it is neither.

    A host outside ASCII is first mapped as browsers and resolvers map it (IDNA: full-width
    forms, ideographic and other dots, circled digits...), then read again: so
    ``169\u3002254\u3002169\u3002254`` (ideographic dots) and the same in full-width digits
    are the address they stand for."""
    host = host.strip("[]").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    ascii_host = host.rstrip(".")
    if _NUMERIC_HOST.fullmatch(ascii_host):
        # inet_aton reads "2852039166", "0xA9FEA9FE", "0251.0376.0251.0376" and
        # "169.254.43518" as 169.254.169.254, as the C library's resolver does.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(ascii_host))
        except OSError:
            return None
    try:
        ascii_host = ascii_host.encode("idna").decode("ascii")
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
