import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from providers.models import Provider
from providers.services import provider_save

pytestmark = pytest.mark.django_db


def test_bedrock_needs_a_region_or_a_base_url():
    with pytest.raises(ValidationError) as error:
        provider_save(provider_type="aws-bedrock", actor=None, changes={}, api_key="k")
    assert "region" in error.value.message_dict
    saved = provider_save(
        provider_type="aws-bedrock", actor=None, changes={"region": "eu-west-3"}, api_key="k"
    )
    assert saved.effective_base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    saved = provider_save(
        provider_type="aws-bedrock",
        actor=None,
        changes={"region": "", "base_url": "https://bedrock.proxy.example"},
    )
    assert saved.effective_base_url == "https://bedrock.proxy.example"


@pytest.mark.parametrize("region", ["us east 1", "US-EAST-1", "../x", "us-east-1\n", "x" * 40])
def test_a_malformed_region_is_refused(region):
    with pytest.raises(ValidationError):
        provider_save(
            provider_type="aws-bedrock", actor=None, changes={"region": region}, api_key="k"
        )
    assert not Provider.objects.exists()


def test_the_region_field_shows_only_for_bedrock(staff_client):
    bedrock = staff_client.get(reverse("providers:edit", args=["aws-bedrock"]))
    openai = staff_client.get(reverse("providers:edit", args=["openai"]))
    assert b'name="region"' in bedrock.content and b'name="region"' not in openai.content


def test_provider_set_takes_a_region(piped_stdin):
    piped_stdin("bedrock-api-key\n")
    out = io.StringIO()
    call_command(
        "provider_set", "aws-bedrock", "--region", "ap-southeast-2", "--key-stdin", stdout=out
    )
    provider = Provider.objects.get()
    assert provider.region == "ap-southeast-2"
    assert provider.effective_base_url == "https://bedrock-runtime.ap-southeast-2.amazonaws.com"
    with pytest.raises(CommandError, match="region: Enter a region name"):
        call_command("provider_set", "aws-bedrock", "--region", "nowhere", stdout=out)
    assert Provider.objects.get().region == "ap-southeast-2"
