"""A revoked token, a removed key, a provider turned off: the very next call shows it."""

from __future__ import annotations

import httpx
import pytest

from providers.models import Provider
from tokens.services import token_revoke
from userkeys.models import UserKey

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
USER_KEY = "sk-user-next-call-CANARY"


def call(server, deployment):
    return httpx.post(
        f"{server}/api/v2/aibridge/openai/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {deployment.token.secret}"},
    )


def test_revoking_a_token_refuses_the_next_call(gateway_server, deployment):
    assert call(gateway_server, deployment).status_code == 200
    token_revoke(token=deployment.token.token, actor=None)
    assert call(gateway_server, deployment).status_code == 401


def test_removing_a_user_key_changes_the_next_calls_credential(
    gateway_server, deployment, save_user_key
):
    provider = Provider.objects.get(type="openai")
    save_user_key(deployment.developer, provider, USER_KEY)
    assert call(gateway_server, deployment).status_code == 200
    UserKey.objects.all().delete()
    assert call(gateway_server, deployment).status_code == 200
    sent = [r.headers["authorization"] for r in deployment.fake.calls()]
    assert sent[0] == f"Bearer {USER_KEY}" and sent[1] != sent[0]
    Provider.objects.filter(pk=provider.pk).update(central_key_fallback=False)
    response = call(gateway_server, deployment)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "user_api_key_required"


def test_turning_a_provider_off_refuses_the_next_call(gateway_server, deployment):
    assert call(gateway_server, deployment).status_code == 200
    Provider.objects.filter(type="openai").update(enabled=False)
    response = call(gateway_server, deployment)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "provider_disabled"
    assert len(deployment.fake.calls()) == 1


def test_the_gateway_can_be_switched_off(deployment, settings):
    from gateway.app import application

    from .conftest import run

    settings.AI_GATEWAY_ENABLED = False

    async def send():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/openai/v1/chat/completions",
                json=CHAT,
                headers={"Authorization": f"Bearer {deployment.token.secret}"},
            )

    response = run(send)
    assert response.status_code == 404
    assert "disabled" in response.json()["error"]["message"]
