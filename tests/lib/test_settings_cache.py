"""Settings read on every gateway call are cached as plain attributes, and forgotten when a
setting changes."""

from __future__ import annotations

import pytest
from django.test import override_settings

from lib.settings_cache import cached_settings


def test_a_setting_reads_the_same_as_through_django(settings):
    assert cached_settings.AI_GATEWAY_MAX_BODY_BYTES == settings.AI_GATEWAY_MAX_BODY_BYTES


def test_it_is_kept_after_the_first_read():
    cached_settings.OUTBOUND_READ_TIMEOUT  # noqa: B018 (the read caches it)
    assert "OUTBOUND_READ_TIMEOUT" in vars(cached_settings)


def test_a_changed_setting_is_read_again(settings):
    before = cached_settings.AI_GATEWAY_ENABLED
    settings.AI_GATEWAY_ENABLED = not before
    assert cached_settings.AI_GATEWAY_ENABLED is (not before)
    with override_settings(AI_GATEWAY_ENABLED=before):
        assert cached_settings.AI_GATEWAY_ENABLED is before
    assert cached_settings.AI_GATEWAY_ENABLED is (not before)


def test_a_setting_that_does_not_exist_is_an_attribute_error():
    with pytest.raises(AttributeError):
        cached_settings.NO_SUCH_SETTING  # noqa: B018
