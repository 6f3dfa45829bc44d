"""Any input to the provider forms and commands: an error or a valid provider, never a crash."""

import contextlib

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from providers.forms import ProviderForm
from providers.models import Provider
from providers.services import provider_save
from providers.validators import validate_api_key, validate_base_url
from tests.properties import (
    assert_all_valid,
    property_settings,
    raw_bytes,
    rolled_back,
    run_command,
    texts,
)

pytestmark = pytest.mark.django_db

hosts = st.sampled_from(
    [
        "api.example.com",
        "169.254.169.254",
        "2852039166",
        "0xa9fea9fe",
        "[::ffff:a9fe:a9fe]",
        "[64:ff9b::a9fe:a9fe]",
        "metadata.google.internal.",
        "10.0.0.1",
        "127.0.0.1:8000",
        "exa\u202emple.com",
    ]
)
urls = st.one_of(
    texts,
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}{path}",
        st.sampled_from(["http", "https", "file", "ftp", "HTTP"]),
        st.one_of(hosts, texts),
        st.one_of(st.just("/v1"), texts),
    ),
)


def valid_saved_provider(provider: Provider) -> None:
    if provider.api_key is not None and not provider.api_key.needs_reentry:
        validate_api_key(provider.api_key.reveal())
    if provider.base_url:
        validate_base_url(provider.base_url)


@property_settings
@given(
    api_key=texts,
    base_url=urls,
    region=texts,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    provider_type=st.sampled_from(["anthropic", "aws-bedrock", "openai-compatible"]),
)
def test_the_provider_form_never_crashes_or_saves_invalid_data(
    api_key, base_url, region, flags, provider_type
):
    data = {"api_key": api_key, "base_url": base_url, "region": region}
    for name, on in zip(
        ("enabled", "central_key_enabled", "user_keys_allowed", "central_key_fallback"),
        flags,
        strict=True,
    ):
        if on:
            data[name] = "on"
    with rolled_back():
        form = ProviderForm(data, instance=Provider(type=provider_type))
        if form.is_valid():
            with contextlib.suppress(ValidationError):
                provider_save(
                    provider_type=provider_type,
                    actor=None,
                    changes=form.changes(),
                    api_key=form.key_change(),
                )
        assert_all_valid(Provider.objects.all(), valid_saved_provider)


@property_settings
@given(base_url=urls, region=texts, key=raw_bytes, use_file=st.booleans())
def test_provider_commands_answer_in_one_line_and_save_only_valid_data(
    tmp_path_factory, base_url, region, key, use_file
):
    with rolled_back():
        if use_file:
            path = tmp_path_factory.mktemp("k") / "key"
            path.write_bytes(key)
            source = ["--key-file", str(path)]
        else:
            source = ["--key-stdin"]
        run_command("provider_set", "aws-bedrock", *source, "--base-url", base_url, stdin=key)
        run_command("provider_set", "aws-bedrock", "--region", region)
        run_command("provider_set_key", "aws-bedrock", stdin=key)
        assert_all_valid(Provider.objects.all(), valid_saved_provider)
