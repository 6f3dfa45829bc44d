"""Which proxy an outbound call goes through, from the usual environment variables; how long
a provider is given to answer."""

from __future__ import annotations

import pytest

from lib.outbound import EnvironmentProxies

CORPORATE = {
    "https": "http://alice:s3cr%40t@proxy.corp:3128",
    "http": "http://proxy.corp:8080",
    "no": "localhost, .internal.example,models.lan:8000",
}


@pytest.mark.parametrize(
    ("origin", "through"),
    [
        (("https", "api.openai.com", 443), ("proxy.corp", 3128)),
        (("http", "api.example.com", 80), ("proxy.corp", 8080)),
        (("https", "localhost", 443), None),
        (("https", "gpu.internal.example", 443), None),  # a domain suffix
        (("http", "models.lan", 8000), None),  # host:port
        (("http", "models.lan", 9000), ("proxy.corp", 8080)),  # another port
    ],
)
def test_each_origin_goes_through_the_proxy_for_its_scheme_unless_no_proxy_names_it(
    origin, through
):
    proxy = EnvironmentProxies(CORPORATE)(origin)
    assert (proxy and (proxy.host, proxy.port)) == through


def test_credentials_become_basic_authorization_and_stay_out_of_the_repr():
    proxy = EnvironmentProxies(CORPORATE)(("https", "api.anthropic.com", 443))
    assert proxy is not None
    assert proxy.authorization == "Basic YWxpY2U6czNjckB0"  # alice:s3cr@t
    assert "s3cr" not in repr(proxy) and "YWxp" not in repr(proxy)


def test_without_proxy_variables_every_call_is_direct():
    assert EnvironmentProxies({})(("https", "api.openai.com", 443)) is None
    assert (
        EnvironmentProxies({"https": "http://proxy.corp:3128", "no": "*"})(
            ("https", "api.openai.com", 443)
        )
        is None
    )


def test_an_unusable_proxy_is_a_problem_that_does_not_quote_it():
    problems = EnvironmentProxies(
        {"https": "socks5://bob:hunter2@proxy.corp:1080", "http": "http://proxy.corp:x"}
    ).problems()
    assert problems == [
        "HTTPS_PROXY: an outbound proxy must be an http:// URL with a host",
        "HTTP_PROXY: the outbound proxy's port is not a number",
    ]


def test_the_shared_pool_reads_the_environment(monkeypatch, settings):
    from lib import outbound

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "models.lan")
    pool = outbound._new_pool()
    assert pool._proxy(("https", "api.openai.com", 443)) == outbound.Proxy("proxy.corp", 3128)
    assert pool._proxy(("https", "models.lan", 443)) is None


def test_a_provider_gets_as_long_to_answer_as_the_official_sdks_give_it(settings):
    """A long answer that is not streamed sends no byte until it is done: the gateway must
    not give up before the caller's SDK does, on a call the provider goes on billing."""
    from anthropic._constants import DEFAULT_TIMEOUT as anthropic_sdk
    from openai._constants import DEFAULT_TIMEOUT as openai_sdk

    waits = [sdk.read for sdk in (openai_sdk, anthropic_sdk)]
    assert all(isinstance(wait, float | int) for wait in waits)
    assert max(wait or 0 for wait in waits) <= settings.OUTBOUND_READ_TIMEOUT
