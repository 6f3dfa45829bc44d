"""Chats' path: a route from the route builder, sent in process (no network hop)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway import inprocess
from gateway.app import IDENTITY_SCOPE_KEY
from models_catalog.models import Purpose
from providers.models import Provider
from routing.routes import GatewayIdentity, ModelRequest, build_route
from tokens.services import token_revoke

from .conftest import CENTRAL, run

pytestmark = pytest.mark.django_db(transaction=True)

USER_KEY = "sk-user-delegated-CANARY-4242"
CHAT = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hello"}]}


def route_for(deployment, provider_type="openai"):
    return build_route(
        ModelRequest(
            user=deployment.developer,
            model=deployment.model(provider_type),
            purpose=Purpose.CHAT,
            api_key_id=deployment.token.token.pk,
        )
    )


def send(route, body=CHAT, path="/chat/completions"):
    async def call():
        async with inprocess.client(route.identity) as client:
            return await client.post(
                route.base_url + path, headers=route.headers.reveal(), json=body
            )

    return run(call)


def test_a_central_key_route_carries_nothing_and_the_gateway_injects_the_key(deployment):
    route = route_for(deployment)
    assert "Authorization" not in route.headers.reveal()
    response = send(route)
    assert response.status_code == 200
    [received] = deployment.fake.calls()
    assert received.headers["authorization"] == f"Bearer {CENTRAL['openai']}"
    row = deployment.usage().get()
    assert (row.route, row.credential_source, row.api_key_id) == (
        "in_process",
        "central",
        deployment.token.token.pk,
    )


def test_a_delegated_route_forwards_the_users_key_and_never_the_central_one(
    deployment, save_user_key
):
    save_user_key(deployment.developer, Provider.objects.get(type="anthropic"), USER_KEY)
    route = route_for(deployment, "anthropic")
    assert route.headers.reveal()["X-Coder-AI-Governance-Token"] == "delegated"
    body = {
        "model": "claude-fake",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
    }
    response = send(route, body, "/messages")
    assert response.status_code == 200, response.text
    [received] = deployment.fake.calls()
    assert received.headers["x-api-key"] == USER_KEY
    assert CENTRAL["anthropic"] not in repr(received.headers) + received.body.decode()
    assert not [h for h in received.headers if h.startswith("x-coder-")]
    assert deployment.usage().get().credential_source == "user"


def test_a_delegated_call_is_refused_once_the_provider_stops_allowing_user_keys(
    deployment, save_user_key
):
    save_user_key(deployment.developer, Provider.objects.get(type="openai"), USER_KEY)
    route = route_for(deployment)
    Provider.objects.filter(type="openai").update(
        user_keys_allowed=False, central_key_fallback=False
    )
    response = send(route)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "user_keys_not_allowed"
    assert deployment.fake.calls() == []


def test_a_revoked_token_fails_the_next_in_process_call(deployment):
    route = route_for(deployment)
    token_revoke(token=deployment.token.token, actor=None)
    response = send(route)
    assert response.status_code == 401
    assert deployment.fake.calls() == []


def test_an_identity_must_match_its_token(deployment, other_developer):
    route = route_for(deployment)
    forged = GatewayIdentity(user_id=other_developer.pk, api_key_id=route.identity.api_key_id)

    async def call():
        async with inprocess.client(forged) as client:
            return await client.post(route.base_url + "/chat/completions", json=CHAT)

    assert run(call).status_code == 401
    assert deployment.fake.calls() == []


def test_streams_arrive_chunk_by_chunk_in_process(deployment):
    route = route_for(deployment)
    body = {**CHAT, "stream": True}

    async def call():
        arrivals = []
        async with (
            inprocess.client(route.identity) as client,
            client.stream(
                "POST",
                route.base_url + "/chat/completions",
                headers={
                    **route.headers.reveal(),
                    "x-fake-chunk-delay": "0.1",
                    "x-fake-chunks": "6",
                },
                json=body,
            ) as response,
        ):
            async for chunk in response.aiter_raw():
                arrivals.append((time.monotonic(), chunk))
        return arrivals

    arrivals = run(call)
    text = b"".join(chunk for _, chunk in arrivals).decode()
    assert text.endswith("data: [DONE]\n\n") and '"usage":{' not in text
    spread = arrivals[-1][0] - arrivals[0][0]
    assert len(arrivals) >= 6 and spread >= 0.4  # not one buffered lump at the end


def test_closing_a_stream_early_closes_the_upstream_call_and_records_it(deployment):
    route = route_for(deployment)

    async def call():
        async with (
            inprocess.client(route.identity) as client,
            client.stream(
                "POST",
                route.base_url + "/chat/completions",
                headers={
                    **route.headers.reveal(),
                    "x-fake-chunk-delay": "0.1",
                    "x-fake-chunks": "50",
                },
                json={**CHAT, "stream": True},
            ) as response,
        ):
            async for _chunk in response.aiter_raw():
                break
        await asyncio.sleep(0.5)

    run(call)
    assert deployment.fake.disconnects == 1
    row = deployment.usage().get()
    assert row.error_kind == "client_disconnected" and row.streamed


def test_no_outside_request_can_carry_an_identity(deployment, gateway_server):
    """The scope key is set by the in-process transport only; a header cannot produce it."""
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/openai/v1/chat/completions",
        json=CHAT,
        headers={
            "X-Coder-AI-Governance-Token": "delegated",
            IDENTITY_SCOPE_KEY: f"{deployment.developer.pk}:{deployment.token.token.pk}",
            "Authorization": "Bearer sk-anything",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "delegated_outside"
    assert deployment.fake.calls() == []
