import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_catalog.models import ModelConfig
from providers.models import Provider

pytestmark = pytest.mark.django_db


def test_demo_setup_configures_the_fake_provider_and_can_run_again():
    for _ in range(2):
        out = io.StringIO()
        call_command("demo_setup", "--url", "http://127.0.0.1:9999/v1", stdout=out)
        assert "Demo ready" in out.getvalue()
    provider = Provider.objects.get()
    assert (provider.type, provider.base_url) == ("openai-compatible", "http://127.0.0.1:9999/v1")
    assert provider.api_key.reveal() == "sk-demo-fake-provider"
    models = ModelConfig.objects.order_by("identifier")
    assert [m.identifier for m in models] == ["fake-gpt", "fake-gpt-mini"]
    assert ModelConfig.objects.get(is_default=True).identifier == "fake-gpt"


def test_demo_setup_takes_the_fake_providers_port_and_says_what_to_run_next():
    out = io.StringIO()
    call_command("demo_setup", "--port", "9998", stdout=out)
    assert Provider.objects.get().base_url == "http://127.0.0.1:9998/v1"
    said = out.getvalue()
    assert "manage.py fake_provider --port 9998" in said
    assert "[[fake: chunk-delay=0.5; chunks=40]]" in said
    with pytest.raises(CommandError, match="--port must be between"):
        call_command("demo_setup", "--port", "0")


def test_the_slow_reply_tag_the_demo_names_streams_slowly():
    from fakeprovider.asked import Control

    control = Control.read({}, "hi [[fake: chunk-delay=0.5; chunks=40]]", 0.05)
    assert (control.chunk_delay, control.chunks) == (0.5, 40)
