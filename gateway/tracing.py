"""OpenTelemetry traces of the AI Gateway's calls, with the GenAI semantic conventions.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set;
the exporter honours the standard ``OTEL_*`` variables (headers, protocol, service name).

A call's own path only picks its span's ids: the trace of the caller's ``traceparent`` (or a
new one) and a span id of its own, which goes upstream as the provider's ``traceparent``.
The span itself is made from the call's usage row once the row is written, with the call's
own start and end times (the usage writer's batch, off the call's path), as the usage row
is. Its attributes are metadata only: never a key, token or prompt.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from .store import USAGE_COLUMNS

_AT = {name: USAGE_COLUMNS.index(name) for name in USAGE_COLUMNS}
_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# gen_ai.provider.name, as the GenAI conventions name each provider.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "azure-openai": "azure.ai.openai",
    "aws-bedrock": "aws.bedrock",
    "openrouter": "openrouter",
    "vercel-ai-gateway": "vercel",
    "openai-compatible": "openai",
}
# gen_ai.operation.name of each endpoint; others are named by the endpoint itself.
OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "responses.compact": "chat",
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
    "completions": "text_completion",
}
_exporter_for_tests: Any = None
_metric_reader_for_tests: Any = None


@dataclass(slots=True, frozen=True)
class CallTrace:
    """A call's span ids: its trace, the caller's span (None: none sent), its own."""

    trace_id: int
    parent_id: int | None
    span_id: int
    flags: int

    @property
    def traceparent(self) -> str:
        """What the provider gets: this call's span as its parent."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"


@cache
def enabled() -> bool:
    """Read once per process (the environment does not change while it runs)."""
    return _exporter_for_tests is not None or bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def call_trace(traceparent: bytes | None) -> CallTrace:
    """The ids of a call's span, continuing the caller's trace when it sent a valid one."""
    own = random.getrandbits(64) or 1
    if traceparent is not None and (found := _TRACEPARENT.fullmatch(traceparent.strip())):
        trace_id, parent_id = int(found[1], 16), int(found[2], 16)
        if trace_id and parent_id:
            return CallTrace(trace_id, parent_id, own, int(found[3], 16))
    return CallTrace(random.getrandbits(128) or 1, None, own, 1)


# The ids the next span takes (set around its making: the SDK asks its id generator).
_chosen: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar("chosen", default=None)


@cache
def _tracer() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

    class ChosenIds(IdGenerator):
        """The ids picked on the call's path; random ones otherwise."""

        fallback = RandomIdGenerator()

        def generate_span_id(self) -> int:
            chosen = _chosen.get()
            return chosen.span_id if chosen else self.fallback.generate_span_id()

        def generate_trace_id(self) -> int:
            chosen = _chosen.get()
            return chosen.trace_id if chosen else self.fallback.generate_trace_id()

    service = os.environ.get("OTEL_SERVICE_NAME", "llmcp-gateway")
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), id_generator=ChosenIds()
    )
    if _exporter_for_tests is not None:
        provider.add_span_processor(SimpleSpanProcessor(_exporter_for_tests))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("llmcp.gateway")


@cache
def _meters() -> tuple[Any, Any]:
    """The GenAI client metrics: token usage and operation duration (histograms)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    if _metric_reader_for_tests is not None or _exporter_for_tests is not None:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = _metric_reader_for_tests or InMemoryMetricReader()  # tests: nowhere else
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    service = os.environ.get("OTEL_SERVICE_NAME", "llmcp-gateway")
    meter = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    ).get_meter("llmcp.gateway")
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call."
    )
    duration = meter.create_histogram(
        "gen_ai.client.operation.duration", unit="s", description="How long a call took."
    )
    return tokens, duration


def export(rows: list[tuple[Any, ...]], traces: dict[int, CallTrace]) -> None:
    """A span per written usage row of a traced call, with its own times, and the call in
    the GenAI client metrics."""
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
    )

    tracer = _tracer()
    at = _AT
    for row in rows:
        ids = traces.get(id(row))
        if ids is None:
            continue
        # A root span unless the caller sent its own: never the context the writer's task
        # happened to start in (a chat turn's, say).
        parent = Context()
        if ids.parent_id is not None:
            remote = SpanContext(
                ids.trace_id, ids.parent_id, is_remote=True, trace_flags=TraceFlags(ids.flags)
            )
            parent = trace.set_span_in_context(NonRecordingSpan(remote))
        started: datetime = row[at["created_at"]]
        start_ns = int(started.timestamp() * 1e9)
        end_ns = start_ns + int(row[at["latency_ms"]] * 1e6)
        operation = OPERATIONS.get(row[at["endpoint"]], row[at["endpoint"]])
        model = row[at["model_identifier"]]
        token = _chosen.set(ids)
        try:
            span = tracer.start_span(
                f"{operation} {model}".strip(),
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=start_ns,
                attributes=_attributes(row, operation),
            )
        finally:
            _chosen.reset(token)
        if row[at["error_kind"]]:
            span.set_status(Status(StatusCode.ERROR, row[at["error_kind"]]))
        span.end(end_time=end_ns)
        _measure(row, operation)


def _measure(row: tuple[Any, ...], operation: str) -> None:
    at = _AT
    tokens, duration = _meters()
    provider = row[at["provider_type"]]
    common = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": row[at["model_identifier"]],
    }
    failed = {"error.type": row[at["error_kind"]]} if row[at["error_kind"]] else {}
    duration.record(row[at["latency_ms"]] / 1000, {**common, **failed})
    prompt = row[at["input_tokens"]] + row[at["cache_read_tokens"]] + row[at["cache_write_tokens"]]
    for kind, count in (("input", prompt), ("output", row[at["output_tokens"]])):
        if count:
            tokens.record(count, {**common, "gen_ai.token.type": kind})


def _attributes(row: tuple[Any, ...], operation: str) -> dict[str, Any]:
    at = _AT
    provider = row[at["provider_type"]]
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": row[at["model_identifier"]],
        "gen_ai.usage.input_tokens": row[at["input_tokens"]]
        + row[at["cache_read_tokens"]]
        + row[at["cache_write_tokens"]],
        "gen_ai.usage.output_tokens": row[at["output_tokens"]],
        "http.response.status_code": row[at["status"]],
        "llmcp.provider.type": provider,
        "llmcp.credential_source": row[at["credential_source"]] or "none",
        "llmcp.streamed": bool(row[at["streamed"]]),
        "llmcp.usage.cache_read_tokens": row[at["cache_read_tokens"]],
        "llmcp.usage.cache_write_tokens": row[at["cache_write_tokens"]],
    }
    if row[at["ttfb_ms"]] is not None:
        attributes["llmcp.time_to_first_byte_ms"] = round(row[at["ttfb_ms"]], 3)
    if row[at["cost_usd"]] is not None:
        attributes["llmcp.cost_usd"] = float(row[at["cost_usd"]])
    if row[at["error_kind"]]:
        attributes["error.type"] = row[at["error_kind"]]
    if row[at["key_label"]]:
        attributes["llmcp.central_key"] = row[at["key_label"]]
    if row[at["fallback_from"]]:
        attributes["llmcp.fallback_from"] = row[at["fallback_from"]]
    return attributes


@contextlib.contextmanager
def turn_span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    """A span around a chat turn (None while traces are off): the gateway calls made inside
    it carry it as their ``traceparent`` (``traceparent_now``), so they are its children."""
    if not enabled():
        yield None
        return
    from opentelemetry.trace import SpanKind

    with _tracer().start_as_current_span(
        name, kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


def traceparent_now() -> str | None:
    """The current span as a ``traceparent`` header value; None without one."""
    if not enabled():
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def use_exporter_for_tests(exporter: Any, metric_reader: Any = None) -> None:
    """Send spans to ``exporter`` (e.g. the SDK's InMemorySpanExporter), at once, and the
    metrics to ``metric_reader`` (e.g. InMemoryMetricReader)."""
    global _exporter_for_tests, _metric_reader_for_tests
    _exporter_for_tests, _metric_reader_for_tests = exporter, metric_reader
    _tracer.cache_clear()
    _meters.cache_clear()
    enabled.cache_clear()
