"""The circuit breaker per provider and model: it opens after enough failures in a window,
calls then fail at once in the caller's format without reaching the provider, one call
tries again once the time is up, and its answer closes the breaker or opens it anew. Time
is moved by writing the breaker's row, as the clock would."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from audit.models import AuditEntry
from gateway.app import application
from providers.models import Breaker, BreakerState
from tests.servers import served_app

from .conftest import run, usage_written, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CHAT: dict[str, object] = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def breaker_settings(settings):
    settings.AI_GATEWAY_BREAKER_FAILURES = 3
    settings.AI_GATEWAY_BREAKER_WINDOW_SECONDS = 60
    settings.AI_GATEWAY_BREAKER_OPEN_SECONDS = 30
    return settings


def calls(deployment, count=1, headers=None, path="/openai/v1/chat/completions", body=CHAT):
    token = deployment.token.secret

    async def make():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [
                await client.post(
                    f"/api/v2/aibridge{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                )
                for _ in range(count)
            ]

    return run(make)


def failing(count, deployment):
    return calls(deployment, count, {"x-fake-status": "503"})


def test_it_opens_after_enough_failures_and_then_fails_at_once(
    deployment, breaker_settings, caplog
):
    caplog.set_level(logging.WARNING, "gateway")
    assert [r.status_code for r in failing(3, deployment)] == [503] * 3
    breaker = Breaker.objects.get()
    assert breaker.state() == BreakerState.OPEN and breaker.failures == 3
    assert 28 <= (breaker.open_until - timezone.now()).total_seconds() <= 31
    assert "circuit for openai/fake-gpt opened (3 failures in 60 s)" in caplog.text
    deployment.fake.clear()
    [refused] = calls(deployment, 1)
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert "calls to it are paused and tried again at" in error["message"]
    assert error["code"] == "provider_unavailable"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert deployment.fake.calls() == []  # the provider was spared
    rows = wait_for_usage(4)
    assert rows[-1].error_kind == "breaker_open" and rows[-1].status == 503


def test_failures_outside_the_window_do_not_add_up(deployment, breaker_settings):
    failing(2, deployment)
    Breaker.objects.update(window_started=timezone.now() - timedelta(seconds=61))
    failing(2, deployment)
    breaker = Breaker.objects.get()
    assert breaker.state() == BreakerState.CLOSED and breaker.failures == 2


def test_a_callers_own_errors_do_not_count(deployment, breaker_settings):
    calls(deployment, 4, {"x-fake-status": "400"})
    calls(deployment, 4, {"x-fake-status": "429"})
    assert not Breaker.objects.exists()


def test_one_call_tries_again_when_the_time_is_up_and_its_answer_closes_it(
    deployment, breaker_settings
):
    failing(3, deployment)
    Breaker.objects.update(open_until=timezone.now() - timedelta(seconds=1))
    deployment.fake.clear()
    [tried] = calls(deployment, 1)
    assert tried.status_code == 200
    assert len(deployment.fake.calls()) == 1
    assert not Breaker.objects.exists()
    assert [r.status_code for r in calls(deployment, 2)] == [200, 200]


def test_a_failed_try_opens_it_anew(deployment, breaker_settings):
    failing(3, deployment)
    Breaker.objects.update(open_until=timezone.now() - timedelta(seconds=1))
    [tried] = failing(1, deployment)
    assert tried.status_code == 503
    breaker = Breaker.objects.get()
    assert breaker.state() == BreakerState.OPEN and breaker.probe_until is None
    assert (breaker.open_until - timezone.now()).total_seconds() > 25


def test_while_one_call_tries_again_the_others_fail_at_once(deployment, breaker_settings):
    failing(3, deployment)
    Breaker.objects.update(
        open_until=timezone.now() - timedelta(seconds=1),
        probe_until=timezone.now() + timedelta(seconds=20),
    )
    deployment.fake.clear()
    [refused] = calls(deployment, 1)
    assert refused.status_code == 503 and deployment.fake.calls() == []


def test_the_breaker_is_per_model(deployment, breaker_settings):
    failing(3, deployment)
    anthropic = calls(
        deployment,
        1,
        {"x-api-key": deployment.token.secret},
        "/anthropic/v1/messages",
        {"model": "claude-fake", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert anthropic[0].status_code == 200


def test_zero_failures_turns_it_off(deployment, breaker_settings):
    breaker_settings.AI_GATEWAY_BREAKER_FAILURES = 0
    failing(5, deployment)
    assert not Breaker.objects.exists()


def test_two_server_processes_share_the_breaker(deployment):
    token = deployment.token.secret
    env = {"AI_GATEWAY_BREAKER_FAILURES": "2", "AI_GATEWAY_BREAKER_OPEN_SECONDS": "60"}
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v2/aibridge/openai/v1/chat/completions"
    with served_app(workers=1, **env) as one, served_app(workers=1, **env) as two:
        for _ in range(2):
            httpx.post(f"{one}{path}", json=CHAT, headers={**auth, "x-fake-status": "503"})
        deadline = time.monotonic() + 5
        while not Breaker.objects.filter(open_until__isnull=False).exists():
            assert time.monotonic() < deadline, "the breaker did not open"
            time.sleep(0.05)
        deployment.fake.clear()
        answer = httpx.post(f"{two}{path}", json=CHAT, headers=auth, timeout=15)
        assert answer.status_code == 503 and "paused" in answer.json()["error"]["message"]
        assert deployment.fake.calls() == []
        usage_written()


def test_the_card_and_check_say_which_models_are_paused(
    deployment, breaker_settings, staff_client, capsys
):
    from django.core.management import call_command

    failing(3, deployment)
    page = staff_client.get("/admin/providers/").content.decode()
    assert "Calls paused" in page and "fake-gpt" in page and "upstream_error (503)" in page
    call_command("check", "--database", "default")
    assert "providers.W004" in capsys.readouterr().err


@pytest.mark.postgres
def test_failures_from_many_workers_at_once_count_on_one_breaker(deployment):
    """Two servers of two workers each, on PostgreSQL, 24 failing calls at once: one breaker
    row, every failure counted until it opened, no call answered anything but the
    provider's 503 or the breaker's."""
    from concurrent.futures import ThreadPoolExecutor

    token = deployment.token.secret
    env = {"AI_GATEWAY_BREAKER_FAILURES": "6", "AI_GATEWAY_BREAKER_OPEN_SECONDS": "60"}
    headers = {"Authorization": f"Bearer {token}", "x-fake-status": "503"}
    path = "/api/v2/aibridge/openai/v1/chat/completions"
    with served_app(workers=2, **env) as one, served_app(workers=2, **env) as two:

        def call(n: int) -> httpx.Response:
            base = one if n % 2 else two
            return httpx.post(f"{base}{path}", json=CHAT, headers=headers, timeout=15)

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(call, range(24)))
        assert {a.status_code for a in answers} == {503}
        messages = [a.json()["error"]["message"] for a in answers]
        deadline = time.monotonic() + 5
        while Breaker.objects.filter(open_until__isnull=False).count() != 1:
            assert time.monotonic() < deadline, "the breaker did not open"
            time.sleep(0.05)
        usage_written()
        upstream = [m for m in messages if "paused" not in m]
        assert len(upstream) == len(deployment.fake.calls()) >= 6
        while Breaker.objects.get().failures != len(upstream):  # every failure counted
            assert time.monotonic() < deadline + 5, Breaker.objects.get().failures
            time.sleep(0.05)


def test_an_admin_ends_a_pause_early_and_the_next_call_tries_again(
    deployment, breaker_settings, staff_client
):
    failing(3, deployment)
    staff_client.post("/admin/providers/openai/retry/", {"model_identifier": "fake-gpt"})
    entry = AuditEntry.objects.get(object_type="providers.breaker")
    assert entry.object_repr == "OpenAI fake-gpt: pause ended early"
    deployment.fake.clear()
    assert [r.status_code for r in calls(deployment)] == [200]
    assert not Breaker.objects.exists()
    again = staff_client.post(
        "/admin/providers/openai/retry/",
        {"model_identifier": "fake-gpt"},
        headers={"HX-Request": "true"},
    )
    assert "are not paused" in again.content.decode()
