import io

import pytest
from django.core.management import call_command

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
