"""Hosts in any notation resolvers accept are read as the address they stand for."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.netguard import is_metadata_host, normalize_host

DOTS = [".", "\u3002", "\uff0e", "\uff61"]  # full stop, ideographic, full-width, half-width
FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


@pytest.mark.parametrize(
    "host",
    [
        "169\u3002254\u3002169\u3002254",
        "\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",
        "169\uff0e254\uff0e169\uff0e254",
        "169\uff61254\uff61169\uff61254",
        "\u2460\u2465\u2468.254.169.254",  # circled digits
        "0\uff58a9fea9fe",  # full-width x: 0xa9fea9fe
        "169.254.169.254\u3002",
        "METADATA\u3002GOOGLE\u3002INTERNAL",
    ],
)
def test_a_host_in_unicode_notation_is_the_metadata_address_it_stands_for(host):
    normalized = normalize_host(host)
    assert normalized is not None and is_metadata_host(normalized)


@given(
    last=st.integers(0, 65535),
    dots=st.lists(st.sampled_from(DOTS), min_size=3, max_size=3),
    widths=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_any_mix_of_dots_and_full_width_digits_reads_as_the_address(last, dots, widths):
    address = ipaddress.IPv4Address(f"169.254.{last >> 8}.{last & 255}")
    parts = str(address).split(".")
    text = ""
    flags = iter(widths)
    for index, part in enumerate(parts):
        text += "".join(FULL_WIDTH[d] if next(flags, False) else d for d in part)
        if index < 3:
            text += dots[index]
    assert normalize_host(text) == address
    assert is_metadata_host(address)


def test_an_ordinary_unicode_name_becomes_its_ascii_form():
    assert normalize_host("B\u00fccher.Example.") == "xn--bcher-kva.example"
    assert normalize_host("exa mple.com") is None


@pytest.mark.parametrize("address", ["fe80::1", "fe80:1::1", "fe9a::2", "febf:ffff::1"])
def test_the_whole_ipv6_link_local_range_is_refused(address):
    assert is_metadata_host(ipaddress.ip_address(address))


def test_next_to_the_link_local_range_is_allowed():
    assert not is_metadata_host(ipaddress.ip_address("fec0::1"))
    assert not is_metadata_host(ipaddress.ip_address("fe7f:ffff::1"))
