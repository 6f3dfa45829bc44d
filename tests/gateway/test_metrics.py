"""Prometheus metrics at /metrics: off by default, refused without the token, and across two
worker processes the counters equal the usage rows (parsed with prometheus_client's own
parser); labels bounded, nothing secret in them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import may_scrape
from gateway.models import UsageRecord
from providers.models import Provider
from providers.services import provider_key_add
from tests.servers import served_app

from .conftest import CENTRAL, usage_written

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-CANARY-token-0042"
CHAT: dict[str, object] = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def total(found, name, **labels) -> float:
    return sum(
        s.value
        for s in found.get(name, [])
        if all(s.labels.get(key) == value for key, value in labels.items())
    )


def test_metrics_are_off_unless_a_token_or_addresses_are_set(client, settings):
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and b"llmcp_gateway_calls_total" in answer.content
    assert TOKEN.encode() not in answer.content


def test_allowed_addresses_scrape_without_the_token(settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.168.1.5", "not an address"]
    assert may_scrape("", "10.1.2.3") and may_scrape("", "192.168.1.5")
    assert not may_scrape("", "192.168.1.6") and not may_scrape("", "garbage")


def test_two_workers_count_what_the_usage_rows_hold(deployment):
    provider = Provider.objects.get(type="openai")
    provider_key_add(provider=provider, label="spare", raw_key="sk-spare-metrics-1", actor=None)
    token = deployment.token.secret
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v2/aibridge/openai/v1/chat/completions"
    with served_app(workers=2, METRICS_TOKEN=TOKEN) as base:
        calls = [
            ({}, CHAT),
            ({}, {**CHAT, "stream": True}),
            ({"x-fake-status": "503"}, CHAT),
            ({}, {**CHAT, "model": "no-such-model-CANARY"}),
        ] * 3
        for headers, body in calls:
            httpx.post(f"{base}{path}", json=body, headers={**auth, **headers}, timeout=15)
        usage_written()
        rows = list(UsageRecord.objects.filter(created_at__gte=deployment.started))
        assert len(rows) == 12
        deadline = time.monotonic() + 5
        while True:  # a worker counts a batch just after writing it
            scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            found = samples(scraped.text)
            if total(found, "llmcp_gateway_calls_total") == 12 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert total(found, "llmcp_gateway_calls_total") == len(rows)
    assert total(found, "llmcp_gateway_calls_total", outcome="ok") == 6
    assert total(found, "llmcp_gateway_calls_total", outcome="upstream_error") == 3
    unknown = total(found, "llmcp_gateway_calls_total", model="(unknown)")
    assert unknown == 3  # a name the catalog lacks is not a label of its own
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens")):
        expected = sum(getattr(row, field) for row in rows)
        assert total(found, "llmcp_gateway_tokens_total", kind=kind) == expected
    cost = total(found, "llmcp_gateway_cost_usd_total")
    assert cost == pytest.approx(float(sum(r.cost_usd or 0 for r in rows)))
    assert total(found, "llmcp_gateway_call_seconds_count") == 12
    assert total(found, "llmcp_central_keys", provider="openai", state="active") == 2
    labels = {key for name in found for s in found[name] for key in s.labels}
    assert labels <= {"provider", "model", "outcome", "credential", "kind", "state", "le"}
    for secret in (*CENTRAL.values(), token, TOKEN, "sk-spare-metrics-1", "CANARY"):
        assert secret not in scraped.text


def test_the_grafana_dashboard_asks_only_for_metrics_that_exist(client, settings):
    import json
    import re
    from pathlib import Path

    settings.METRICS_TOKEN = TOKEN
    exposed = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content
    names = {family.name for family in text_string_to_metric_families(exposed.decode())}
    dashboard = json.loads((Path(__file__).parents[2] / "docs/grafana-dashboard.json").read_text())
    asked = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"llmcp_[a-z_]+", target["expr"])
    }
    assert asked and asked <= names, asked - names


def test_serve_prepares_the_multiprocess_folder(settings, monkeypatch, tmp_path):
    from gateway.management.commands.serve import _metrics_folder

    assert _metrics_folder(4) is None  # metrics off: nothing
    settings.METRICS_TOKEN = TOKEN
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert _metrics_folder(1) is None  # one worker: in memory
    made = _metrics_folder(2)
    assert made is not None and Path(made).is_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == made
    Path(made).rmdir()
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    assert _metrics_folder(1) is None and not list(given.glob("*.db"))  # emptied, kept
