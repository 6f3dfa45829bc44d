"""Prometheus metrics of the AI Gateway (``/metrics``), with prometheus_client.

Off unless ``METRICS_TOKEN`` or ``METRICS_ALLOWED_IPS`` is set: then nothing is counted and
nothing is imported. With several worker processes, ``manage.py serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, so the figures add
up across them (prometheus_client's multiprocess mode).

The calls' figures come from their usage rows, counted by the usage writer once a batch is
written (so the counters equal the usage table, and a call's own path counts nothing);
the gauges are set with each batch too. Labels are bounded: provider type, the model (only
models of the catalog; any other name is "(unknown)"), outcome, credential source; never a
person, token or key.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from django.conf import settings

from .store import USAGE_COLUMNS

_AT = {name: USAGE_COLUMNS.index(name) for name in USAGE_COLUMNS}
# Seconds: from a fast cached answer to a long agent turn.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
UNKNOWN_MODEL = "(unknown)"


def enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class GatewayMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        call = ("provider", "model", "outcome", "credential")
        self.calls = Counter(
            "llmcp_gateway_calls", "Model calls through the AI Gateway, by outcome.", call
        )
        self.latency = Histogram(
            "llmcp_gateway_call_seconds",
            "How long a call took, to its last byte.",
            ("provider",),
            buckets=LATENCY_BUCKETS,
        )
        self.first_byte = Histogram(
            "llmcp_gateway_first_byte_seconds",
            "How long a call waited for the provider's first byte.",
            ("provider",),
            buckets=LATENCY_BUCKETS,
        )
        self.tokens = Counter(
            "llmcp_gateway_tokens",
            "Tokens the calls used: input, output, cache_read, cache_write.",
            ("provider", "model", "kind"),
        )
        self.cost = Counter(
            "llmcp_gateway_cost_usd",
            "What the calls cost (USD, at the models' prices; calls of unknown cost not included).",
            ("provider", "model"),
        )
        self.unpriced = Counter(
            "llmcp_gateway_unpriced_calls",
            "Calls that used tokens at a price that is not known.",
            ("provider", "model"),
        )
        self.fallbacks = Counter(
            "llmcp_gateway_fallbacks",
            "Calls a fallback model answered, by the provider that failed them.",
            ("provider",),
        )
        self.in_flight = Gauge(
            "llmcp_gateway_calls_in_flight",
            "Calls being answered now.",
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "llmcp_gateway_streams_open", "Streams being relayed now.", multiprocess_mode="livesum"
        )
        self.queued = Gauge(
            "llmcp_gateway_usage_queue_rows",
            "Usage rows waiting to be written.",
            multiprocess_mode="livesum",
        )
        self.dropped = Counter(
            "llmcp_gateway_usage_rows_dropped",
            "Usage rows dropped: the queue was full, or the database refused them.",
        )
        self.pool = Gauge(
            "llmcp_gateway_db_connections",
            "The gateway's own PostgreSQL connections, open and in use.",
            ("state",),
            multiprocess_mode="livesum",
        )

    def observe(self, rows: list[tuple[Any, ...]]) -> None:
        """Count the calls of usage rows just written."""
        at = _AT
        for row in rows:
            provider = row[at["provider_type"]]
            model = (
                row[at["model_identifier"]] if row[at["model_id"]] is not None else UNKNOWN_MODEL
            )
            outcome = row[at["error_kind"]] or "ok"
            self.calls.labels(
                provider, model, outcome, row[at["credential_source"]] or "none"
            ).inc()
            self.latency.labels(provider).observe(row[at["latency_ms"]] / 1000)
            if row[at["ttfb_ms"]] is not None:
                self.first_byte.labels(provider).observe(row[at["ttfb_ms"]] / 1000)
            for kind in ("input", "output", "cache_read", "cache_write"):
                if count := row[at[f"{kind}_tokens"]]:
                    self.tokens.labels(provider, model, kind).inc(count)
            cost = row[at["cost_usd"]]
            if cost is not None:
                if cost:
                    self.cost.labels(provider, model).inc(float(cost))
            elif row[at["input_tokens"]] or row[at["output_tokens"]]:
                self.unpriced.labels(provider, model).inc()
            if row[at["fallback_from"]]:
                self.fallbacks.labels(row[at["fallback_from"]].split("/", 1)[0]).inc()

    def set_load(self, calls: int, streams: int, queued: int, pool: tuple[int, int]) -> None:
        self.in_flight.set(calls)
        self.streams.set(streams)
        self.queued.set(queued)
        self.pool.labels("open").set(pool[0])
        self.pool.labels("in_use").set(pool[1])


@cache
def _made() -> GatewayMetrics:
    return GatewayMetrics()  # registered once per process


def gateway_metrics() -> GatewayMetrics | None:
    """The metrics; None when metrics are off."""
    return _made() if enabled() else None


def scrape() -> bytes:
    """The exposition text: the calls' figures (every worker's, in multiprocess mode) and
    the state every replica shares, read from the database now (central keys by state,
    paused models)."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if multiprocess():
        from prometheus_client import multiprocess as shared

        calls = CollectorRegistry()
        shared.MultiProcessCollector(calls)
    else:
        calls = REGISTRY
    _made()  # every metric exists from the first scrape on, at 0
    state = CollectorRegistry()
    state.register(_SharedState())
    return generate_latest(calls) + generate_latest(state)


class _SharedState:
    def collect(self) -> Any:
        from django.utils import timezone
        from prometheus_client.core import GaugeMetricFamily

        from providers.models import Provider

        keys = GaugeMetricFamily(
            "llmcp_central_keys",
            "Central keys by state: active, cooling_down (rate-limited), needs_attention.",
            labels=("provider", "state"),
        )
        paused = GaugeMetricFamily(
            "llmcp_breaker_open",
            "Models whose calls are paused by their circuit breaker (1), or tried again (0.5).",
            labels=("provider", "model"),
        )
        now = timezone.now()
        for provider in Provider.objects.prefetch_related("further_keys", "breakers"):
            counts = {"active": 0, "cooling_down": 0, "needs_attention": 0}
            for key in provider.central_keys():
                counts[str(key.key_health(now))] += 1
            for state, count in counts.items():
                keys.add_metric((provider.type, state), count)
            for breaker in provider.breakers.all():
                if breaker.open_until is not None:
                    value = 1.0 if breaker.open_until > now else 0.5
                    paused.add_metric((provider.type, breaker.model_identifier), value)
        yield keys
        yield paused


def may_scrape(authorization: str, address: str) -> bool:
    """The caller sent the metrics token, or scrapes from an allowed address."""
    import hmac
    import ipaddress

    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        caller = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if caller in ipaddress.ip_network(allowed.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def mark_this_process_gone() -> None:
    """At a worker's shutdown: its gauges leave the sums (multiprocess mode)."""
    if multiprocess() and enabled():
        from prometheus_client import multiprocess as shared

        shared.mark_process_dead(os.getpid())
