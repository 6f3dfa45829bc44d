"""Several central keys per provider: calls spread across them, a rate-limited key rests, a
refused one needs attention, a 5xx is tried once more, and the caller gets the provider's
last answer only when every key is out. What the gateway learns of a key is in the
database, so another server process skips the same key."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from audit.models import AuditEntry
from gateway.app import application
from gateway.keys import KeyTurns, cooldown_seconds, parse_further
from providers.health import key_refused
from providers.models import KeyHealth, Provider, ProviderKey
from providers.services import key_attention_clear, provider_key_add, provider_set_key
from tests.servers import served_app

from .conftest import run, usage_written, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

CHAT: dict[str, object] = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hello"}]}
MESSAGE: dict[str, object] = {
    "model": "claude-fake",
    "max_tokens": 9,
    "messages": [{"role": "user", "content": "x"}],
}
GOOD = "sk-good-second-key-0001"


def keyed(deployment, provider_type, own: str, *further: tuple[str, str]) -> Provider:
    provider = Provider.objects.get(type=provider_type)
    provider_set_key(provider=provider, raw_key=own, actor=None)
    for label, raw in further:
        provider_key_add(provider=provider, label=label, raw_key=raw, actor=None)
    return Provider.objects.get(pk=provider.pk)


def calls(deployment, count=1, provider_type="openai", headers=None):
    """``count`` calls in-process; their responses."""
    token = deployment.token.secret
    path, body, auth = "/openai/v1/chat/completions", CHAT, {"Authorization": f"Bearer {token}"}
    if provider_type == "anthropic":
        path, body, auth = "/anthropic/v1/messages", MESSAGE, {"x-api-key": token}

    async def make():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [
                await client.post(
                    f"/api/v2/aibridge{path}", json=body, headers={**auth, **(headers or {})}
                )
                for _ in range(count)
            ]

    return run(make)


def keys_received(deployment, provider_type="openai"):
    header = "x-api-key" if provider_type == "anthropic" else "authorization"
    return [
        r.headers[header].removeprefix("Bearer ")
        for r in deployment.fake.calls("/messages" if provider_type == "anthropic" else "/chat")
    ]


def test_calls_spread_across_the_active_keys_and_rows_name_the_key(deployment):
    keyed(deployment, "openai", "sk-good-first-key-0001", ("team-b", GOOD))
    responses = calls(deployment, 6)
    assert [r.status_code for r in responses] == [200] * 6
    received = keys_received(deployment)
    assert received.count("sk-good-first-key-0001") == 3 and received.count(GOOD) == 3
    labels = [row.key_label for row in wait_for_usage(6)]
    assert sorted(labels) == ["primary"] * 3 + ["team-b"] * 3
    provider = Provider.objects.get(type="openai")
    assert provider.key_last_used_at is not None
    assert provider.further_keys.get().key_last_used_at is not None


@pytest.mark.parametrize("provider_type", ["openai", "anthropic"])
def test_a_rate_limited_key_rests_for_the_time_the_provider_names(deployment, provider_type):
    keyed(deployment, provider_type, "sk-fail-429-r40-first", ("spare", GOOD))
    before = timezone.now()
    responses = calls(deployment, 4, provider_type)
    assert [r.status_code for r in responses] == [200] * 4
    # The first call met the 429 and went on; the rest went to the spare key only.
    received = keys_received(deployment, provider_type)
    assert received.count("sk-fail-429-r40-first") == 1 and received.count(GOOD) == 4
    provider = Provider.objects.get(type=provider_type)
    assert provider.key_health() == KeyHealth.COOLING_DOWN
    rest = (provider.key_cooling_until - before).total_seconds()
    assert 38 <= rest <= 42, rest
    assert "429" in provider.key_last_error
    assert {row.key_label for row in wait_for_usage(4)} == {"spare"}


def test_a_refused_key_needs_attention_is_skipped_audited_and_checked(deployment, capsys):
    keyed(deployment, "openai", "sk-invalid-revoked", ("backup", GOOD))
    responses = calls(deployment, 3)
    assert [r.status_code for r in responses] == [200] * 3
    assert keys_received(deployment).count("sk-invalid-revoked") == 1
    provider = Provider.objects.get(type="openai")
    assert provider.key_health() == KeyHealth.NEEDS_ATTENTION
    assert "401" in provider.key_attention
    entry = AuditEntry.objects.filter(actor_label="gateway", object_repr__contains="primary").get()
    assert "sk-invalid" not in str(entry.changes)
    call_command("check", "--database", "default")
    assert "providers.W003" in capsys.readouterr().err
    key_attention_clear(provider=provider, label="primary", actor=None)
    assert Provider.objects.get(type="openai").key_health() == KeyHealth.ACTIVE


def test_a_5xx_is_tried_once_more_on_the_next_key_then_passed_back(deployment):
    keyed(deployment, "openai", "sk-fail-503-a", ("b", "sk-fail-503-b"), ("c", GOOD))
    [response] = calls(deployment)
    # Round robin may start anywhere; a 5xx gets one more key, not a third.
    received = keys_received(deployment)
    if received[0] == GOOD:
        assert response.status_code == 200 and len(received) == 1
    else:
        assert len(received) == 2
        assert response.status_code == (200 if received[1] == GOOD else 503)


def test_a_5xx_then_a_working_key_is_a_success(deployment):
    keyed(deployment, "openai", "sk-fail-503-a", ("b", GOOD))
    responses = calls(deployment, 2)
    assert [r.status_code for r in responses] == [200, 200]
    # 5xx does not rest a key: both calls started on the failing key once between them.
    assert keys_received(deployment).count("sk-fail-503-a") <= 2
    assert "503" in Provider.objects.get(type="openai").key_last_error


def test_every_key_out_gives_the_last_upstream_error_in_the_callers_format(deployment):
    keyed(deployment, "anthropic", "sk-fail-429-r20-a", ("b", "sk-fail-429-r10-b"))
    [first] = calls(deployment, 1, "anthropic")
    assert first.status_code == 429
    assert first.json()["type"] == "error" and first.json()["error"]["type"]
    assert first.headers["retry-after"] in ("10", "20")
    assert len(keys_received(deployment, "anthropic")) == 2
    deployment.fake.clear()
    # Every key rests: the one back soonest is asked (the provider answers for itself).
    [second] = calls(deployment, 1, "anthropic")
    assert second.status_code == 429
    assert keys_received(deployment, "anthropic") == ["sk-fail-429-r10-b"]


def test_a_personal_key_never_fails_over_to_a_central_key(deployment, save_user_key):
    provider = keyed(deployment, "openai", "sk-good-central-0001", ("b", GOOD))
    save_user_key(deployment.developer, provider, "sk-fail-429-personal")
    responses = calls(deployment, 2)
    assert [r.status_code for r in responses] == [429, 429]
    assert keys_received(deployment) == ["sk-fail-429-personal"] * 2
    rows = wait_for_usage(2)
    assert {(row.credential_source, row.key_label) for row in rows} == {("user", "")}


def test_another_server_process_skips_a_key_this_one_rested(deployment):
    keyed(deployment, "openai", "sk-fail-429-r60-first", ("spare", GOOD))
    token = deployment.token.secret
    body, auth = CHAT, {"Authorization": f"Bearer {token}"}
    with served_app(workers=1) as one, served_app(workers=1) as two:
        first = httpx.post(
            f"{one}/api/v2/aibridge/openai/v1/chat/completions", json=body, headers=auth, timeout=15
        )
        assert first.status_code == 200
        deadline = time.monotonic() + 5
        while Provider.objects.get(type="openai").key_cooling_until is None:
            assert time.monotonic() < deadline, "the rest was not written"
            time.sleep(0.05)
        deployment.fake.clear()
        for _ in range(4):
            answer = httpx.post(
                f"{two}/api/v2/aibridge/openai/v1/chat/completions",
                json=body,
                headers=auth,
                timeout=15,
            )
            assert answer.status_code == 200
        assert keys_received(deployment) == [GOOD] * 4
        usage_written()


def test_a_key_back_from_its_rest_takes_calls_again(deployment):
    provider = keyed(deployment, "openai", "sk-good-first-key-0001", ("spare", GOOD))
    Provider.objects.filter(pk=provider.pk).update(
        key_cooling_until=timezone.now() + timedelta(minutes=5)
    )
    calls(deployment, 2)
    assert keys_received(deployment) == [GOOD, GOOD]
    Provider.objects.filter(pk=provider.pk).update(
        key_cooling_until=timezone.now() - timedelta(seconds=1)
    )
    deployment.fake.clear()
    calls(deployment, 2)
    assert sorted(keys_received(deployment)) == sorted(["sk-good-first-key-0001", GOOD])


def test_a_key_that_needed_attention_and_answers_again_is_active(deployment):
    provider = keyed(deployment, "openai", "sk-good-first-key-0001")
    Provider.objects.filter(pk=provider.pk).update(key_attention="refused (401) earlier")
    [response] = calls(deployment)  # its only key: tried anyway
    assert response.status_code == 200
    assert Provider.objects.get(pk=provider.pk).key_attention == ""
    assert AuditEntry.objects.filter(actor_label="gateway").count() == 1


def test_a_key_replaced_meanwhile_does_not_take_the_old_ones_state(deployment):
    provider = keyed(deployment, "openai", "sk-good-first-key-0001")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider.pk])
        ciphertext = cursor.fetchone()[0]
    provider_set_key(provider=provider, raw_key="sk-good-replacement-0002", actor=None)
    key_refused(provider.pk, 0, ciphertext, 401, "refused (401)")  # a late write of the old key
    assert Provider.objects.get(pk=provider.pk).key_attention == ""


@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    b"retry-after",
                    b"retry-after-ms",
                    b"x-ratelimit-reset-requests",
                    b"x-ratelimit-remaining-requests",
                    b"x-ratelimit-reset-tokens",
                    b"anthropic-ratelimit-requests-reset",
                    b"anthropic-ratelimit-tokens-remaining",
                    b"anthropic-ratelimit-tokens-reset",
                ]
            ),
            st.binary(max_size=40)
            | st.sampled_from([b"0", b"1.5", b"20ms", b"6m0s", b"2026-12-08T00:00:00Z", b"inf"]),
        ),
        max_size=6,
    )
)
def test_a_cooldown_is_read_from_any_headers_without_failing(headers):
    wait = cooldown_seconds(headers, time.time())
    assert 1.0 <= wait <= 3600.0


def test_the_cooldown_names_what_the_provider_said():
    now = time.time()
    assert cooldown_seconds([(b"retry-after", b"12")], now) == 12
    assert cooldown_seconds([(b"retry-after-ms", b"2500")], now) == 2.5
    openai = [
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-reset-requests", b"1m30s"),
        (b"x-ratelimit-remaining-tokens", b"5000"),
        (b"x-ratelimit-reset-tokens", b"6m0s"),
    ]
    assert cooldown_seconds(openai, now) == 90  # the exhausted one, not the longest
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 30))
    waited = cooldown_seconds([(b"anthropic-ratelimit-requests-reset", at.encode())], now)
    assert 28 <= waited <= 31
    assert cooldown_seconds([], now) == 60  # AI_GATEWAY_KEY_COOLDOWN_SECONDS


def test_the_round_robin_skips_resting_and_refused_keys():
    keys = parse_further("1|a|0|0|enc:a\n2|b|0|1|enc:b\n3|c|9999999999|0|enc:c\n4|d|0|0|enc:d")
    turns, now = KeyTurns(), time.time()
    firsts = [turns.order(7, keys, now)[0].label for _ in range(4)]
    assert firsts == ["a", "d", "a", "d"]
    assert "enc:" not in repr(keys)
    resting = parse_further("1|a|9999999999|0|enc:a\n2|b|9999999990|0|enc:b\n3|c|0|1|enc:c")
    assert [k.label for k in turns.order(7, resting, now)] == ["b"]
    refused = parse_further("1|a|0|1|enc:a\n2|b|0|1|enc:b")
    assert [k.label for k in turns.order(7, refused, now)] == ["a", "b"]


def test_further_keys_in_the_providers_table_never_show_the_key(deployment):
    keyed(deployment, "openai", "sk-good-first-key-0001", ("team-b", "sk-further-CANARY-0042"))
    key = ProviderKey.objects.get()
    for text in (repr(key), str(key), str(list(ProviderKey.objects.values()))):
        assert "sk-further-CANARY" not in text
