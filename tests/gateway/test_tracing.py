"""OpenTelemetry spans of gateway calls, captured with the SDK's in-memory exporter: one per
call, named and attributed as the GenAI conventions say, continuing the caller's
traceparent and passing the call's own span upstream; no key, token or prompt in them."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import tracing
from gateway.app import application

from .conftest import CENTRAL, run

pytestmark = pytest.mark.django_db(transaction=True)

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
PROMPT = "hello PROMPT-CANARY-77"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.use_exporter_for_tests(exporter)
    yield exporter
    tracing.use_exporter_for_tests(None)


def call(deployment, headers=None, model="fake-gpt"):
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    auth = {"Authorization": f"Bearer {deployment.token.secret}", **(headers or {})}

    async def make():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(
                "/api/v2/aibridge/openai/v1/chat/completions", json=body, headers=auth
            )

    return run(make)


def test_a_call_is_one_span_with_the_genai_attributes_in_the_callers_trace(deployment, spans):
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert call(deployment, {"traceparent": traceparent}).status_code == 200
    [span] = spans.get_finished_spans()
    assert span.name == "chat fake-gpt"
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert format(span.parent.span_id, "016x") == CALLER_SPAN and span.parent.is_remote
    attributes = dict(span.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "fake-gpt"
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["http.response.status_code"] == 200
    assert span.end_time > span.start_time
    # The provider got the call's own span as its parent, in the same trace.
    [upstream] = deployment.fake.calls("/chat")
    sent = upstream.headers["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01"


def test_without_a_traceparent_a_call_starts_a_trace_and_failures_say_so(deployment, spans):
    call(deployment)
    call(deployment, {"x-fake-status": "503"})
    call(deployment, {"traceparent": "garbage"}, model="no-such-model")
    first, failed, unknown = spans.get_finished_spans()
    assert first.parent is None
    assert failed.attributes["error.type"] == "upstream_error"
    assert failed.status.status_code.name == "ERROR"
    assert unknown.parent is None and unknown.attributes["http.response.status_code"] == 404


def test_no_key_token_or_prompt_in_any_span(deployment, spans):
    call(deployment, {"x-fake-echo-key": "1"})
    call(deployment)
    texts = [span.to_json() for span in spans.get_finished_spans()]
    assert len(texts) == 2
    for text in texts:
        for secret in (*CENTRAL.values(), deployment.token.secret, "PROMPT-CANARY"):
            assert secret not in text


def test_traces_are_off_without_an_endpoint(deployment):
    assert not tracing.enabled()
    call(deployment)
    [upstream] = deployment.fake.calls("/chat")
    assert "traceparent" not in upstream.headers


def test_the_genai_metrics_count_each_calls_tokens_and_duration(deployment, spans_and_metrics):
    _, reader = spans_and_metrics
    call(deployment)
    call(deployment, {"x-fake-status": "503"})
    data = reader.get_metrics_data()
    found = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    duration = found["gen_ai.client.operation.duration"].data.data_points
    assert sum(point.count for point in duration) == 2
    assert any(point.attributes.get("error.type") == "upstream_error" for point in duration)
    tokens = found["gen_ai.client.token.usage"].data.data_points
    kinds = {point.attributes["gen_ai.token.type"] for point in tokens}
    assert kinds == {"input", "output"}
    assert all(point.attributes["gen_ai.request.model"] == "fake-gpt" for point in tokens)


@pytest.fixture
def spans_and_metrics():
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracing.use_exporter_for_tests(exporter, reader)
    yield exporter, reader
    tracing.use_exporter_for_tests(None)


def test_a_chat_turn_is_a_span_and_its_gateway_call_a_child_of_it(deployment, spans):
    from chats import services
    from models_catalog.models import ModelConfig
    from tests.chats.conftest import run_turns
    from tokens.models import ApiToken

    model = ModelConfig.objects.with_provider().get(provider__type="openai")
    chat, _ = services.chat_start(
        user=deployment.developer,
        model=model,
        text=PROMPT,
        api_key=ApiToken.objects.get(pk=deployment.token.token.pk),
    )
    run_turns(chat.pk)
    finished = spans.get_finished_spans()
    [turn] = [s for s in finished if s.name == "invoke_agent fake-gpt"]
    calls = [s for s in finished if s.name == "chat fake-gpt"]  # the reply, and the title
    [reply] = [s for s in calls if s.parent and s.parent.span_id == turn.context.span_id]
    assert reply.context.trace_id == turn.context.trace_id
    assert turn.attributes["llmcp.turn.status"] == "done"
    for span in finished:
        assert "PROMPT-CANARY" not in span.to_json()


def test_a_span_never_takes_the_writers_context_as_its_parent(deployment, spans):
    """The usage writer's task may start inside a chat turn's span; a call without a
    traceparent is still a root span."""
    from opentelemetry import trace

    async def make():
        with trace.use_span(tracing._tracer().start_span("elsewhere")):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                await client.post(
                    "/api/v2/aibridge/openai/v1/chat/completions",
                    json={"model": "fake-gpt", "messages": [{"role": "user", "content": "x"}]},
                    headers={"Authorization": f"Bearer {deployment.token.secret}"},
                )

    run(make)
    [span] = spans.get_finished_spans()
    assert span.parent is None
