"""Every endpoint x stream or not x central key, stored user key or external BYOK, over real
HTTP (the app under uvicorn, the fake provider on another port), asserting on what the
provider received."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from models_catalog.models import ModelConfig
from providers.models import Provider
from providers.registry import REGISTRY, ProviderType, WireFormat

from .conftest import CENTRAL, MODELS, expected_cost, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)

USER_KEY = "sk-user-stored-CANARY-9999"
BYOK_KEY = "sk-byok-external-CANARY-0000"
PLATFORM_HEADERS = {
    "Cookie": "sessionid=abc123; csrftoken=def",
    "X-Coder-Session-Token": "coder-session-CANARY",
    "X-Coder-Workspace": "ws-1",
}


MESSAGES = [{"role": "user", "content": "hi"}]
GOOGLE_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


def token_header(wire: WireFormat, token: str) -> dict[str, str]:
    return {
        WireFormat.OPENAI: {"Authorization": f"Bearer {token}"},
        WireFormat.ANTHROPIC: {"x-api-key": token, "anthropic-version": "2023-06-01"},
        WireFormat.GOOGLE: {"x-goog-api-key": token},
    }[wire]


def calls_for(provider_type: str) -> list[tuple[str, str, dict, bool]]:
    """(name, path after /v1, body, streams) for the endpoints of this type's format."""
    model = MODELS[provider_type]
    wire = REGISTRY[ProviderType(provider_type)].wire_format
    if wire == WireFormat.OPENAI:
        chat = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
        fill_in = {"model": model, "prompt": "def add(a, b):", "suffix": "\n", "max_tokens": 16}
        return [
            ("chat", "/chat/completions", chat, False),
            ("chat-stream", "/chat/completions", {**chat, "stream": True}, True),
            ("completions", "/completions", fill_in, False),
            ("completions-stream", "/completions", {**fill_in, "stream": True}, True),
            ("responses", "/responses", {"model": model, "input": "hello there"}, False),
            (
                "responses-stream",
                "/responses",
                {"model": model, "input": "hi", "stream": True},
                True,
            ),
            ("compact", "/responses/compact", {"model": model, "input": "a long talk"}, False),
            ("input-tokens", "/responses/input_tokens", {"model": model, "input": "hi"}, False),
        ]
    if wire == WireFormat.ANTHROPIC:
        message = {
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        }
        calls = [
            ("messages", "/messages", message, False),
            ("messages-stream", "/messages", {**message, "stream": True}, True),
        ]
        calls.append(("count-tokens", "/messages/count_tokens", message, False))
        return calls
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    return [
        ("generate", f"/models/{model}:generateContent", body, False),
        ("generate-stream", f"/models/{model}:streamGenerateContent?alt=sse", body, True),
        ("count-tokens-google", f"/models/{model}:countTokens", body, False),
    ]


ENDPOINTS = {  # the endpoint each call names, as its usage row says it
    "chat": "chat.completions",
    "chat-stream": "chat.completions",
    "completions": "completions",
    "completions-stream": "completions",
    "responses": "responses",
    "responses-stream": "responses",
    "compact": "responses.compact",
    "messages": "messages",
    "messages-stream": "messages",
    "count-tokens": "messages.count_tokens",
    "input-tokens": "responses.input_tokens",
    "generate": "generateContent",
    "generate-stream": "streamGenerateContent",
    "count-tokens-google": "countTokens",
}
COUNTS = {  # calls that count a prompt's tokens: recorded, never metered; where the count is
    "count-tokens": "input_tokens",
    "input-tokens": "input_tokens",
    "count-tokens-google": "totalTokens",
}
CASES = [
    pytest.param(provider_type, credential, id=f"{provider_type}-{credential}")
    for provider_type in CENTRAL
    for credential in ("central", "user", "byok")
]


@pytest.mark.parametrize("provider_type, credential", CASES)
def test_each_call_reaches_the_provider_with_only_the_right_credential(
    gateway_server, deployment, save_user_key, subtests, provider_type, credential
):
    """Each endpoint of the type's format, streamed and not, one subtest each (one database
    set up for all of them: a transactional test's setup and cleanup cost more than a call)."""
    if credential == "user":
        save_user_key(deployment.developer, Provider.objects.get(type=provider_type), USER_KEY)
    for call in calls_for(provider_type):
        with subtests.test(call=call[0]):
            deployment.fake.clear()
            check_one_call(gateway_server, deployment, provider_type, call, credential)


def check_one_call(
    gateway_server: str, deployment: Any, provider_type: str, call: tuple, credential: str
) -> None:
    import httpx
    from django.utils import timezone

    name, path, body, streams = call
    spec = REGISTRY[ProviderType(provider_type)]
    token = deployment.token.secret
    headers = {**PLATFORM_HEADERS, "User-Agent": "tests/1.0"}
    expected_key = {"central": CENTRAL[provider_type], "user": USER_KEY, "byok": BYOK_KEY}[
        credential
    ]
    if credential == "byok":
        own = spec.auth.headers_for(BYOK_KEY)
        headers.update({"X-Coder-AI-Governance-Token": token, **own})
    else:
        headers.update(token_header(spec.wire_format, token))

    started = timezone.now()
    url = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1{path}"
    response = httpx.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text

    # What the provider received: the one right credential, nothing of the platform.
    [received] = deployment.fake.calls()
    sent_auth = received.headers[spec.auth.name.lower()]
    assert sent_auth == f"{spec.auth.prefix}{expected_key}"
    others = {"authorization", "x-api-key", "x-goog-api-key", "api-key"} - {spec.auth.name.lower()}
    assert not others & set(received.headers)
    assert not [h for h in received.headers if h.startswith("x-coder-")]
    assert "cookie" not in received.headers
    everything = repr(received.headers) + received.body.decode()
    assert token not in everything and "coder-session-CANARY" not in everything
    if credential != "central":
        assert CENTRAL[provider_type] not in everything
    if provider_type == "aws-bedrock":
        action = "invoke-with-response-stream" if streams else "invoke"
        invoke = received.json
        if name == "count-tokens":  # Bedrock's CountTokens, over the invoke body it counts
            action = "count-tokens"
            invoke = json.loads(base64.b64decode(received.json["input"]["invokeModel"]["body"]))
        assert received.path == f"/model/{MODELS[provider_type]}/{action}"
        assert invoke["anthropic_version"] == "bedrock-2023-05-31"
        assert invoke["messages"] == body["messages"] and "model" not in invoke
    if name == "generate-stream":
        assert "alt=sse" in received.query

    # What the caller got back, in its own format, and nothing of the deployment's account.
    account = {"openai-organization", "openai-project", "anthropic-organization-id"}
    shown = account & set(response.headers)
    if credential == "central":
        assert not shown
    elif spec.wire_format != WireFormat.GOOGLE:  # Google names no account
        assert shown  # the caller's own account, as its provider said
    if streams:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.text.count("data:") >= 5
    else:
        assert response.json()

    row = wait_for_usage(1, since=started)[0]
    assert (row.status, row.streamed, row.route) == (200, streams, "external")
    assert row.credential_source == ("central" if credential == "central" else "user")
    assert row.model_identifier == MODELS[provider_type]
    assert row.user_agent == "tests/1.0" and row.api_key_id == deployment.token.token.pk
    model = deployment.model(provider_type)
    assert (row.username, row.user_id) == (deployment.developer.username, deployment.developer.pk)
    assert (row.provider_type, row.provider_id) == (provider_type, model.provider_id)
    assert (row.model_id, row.endpoint, row.error_kind) == (model.pk, ENDPOINTS[name], "")
    tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)
    assert row.cost_usd == expected_cost(*tokens)  # each count in its own column
    if name in COUNTS:
        assert response.json()[COUNTS[name]] > 0  # in the caller's shape, whoever counted
        assert (row.input_tokens, row.output_tokens, row.cost_usd) == (0, 0, 0)
    else:
        assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost_usd > 0
        assert row.ttfb_ms is not None and row.latency_ms >= row.ttfb_ms


@pytest.mark.parametrize("provider_type", list(CENTRAL))
def test_model_listings_show_only_the_callers_usable_models(
    gateway_server, deployment, provider_type
):
    import httpx

    wire = REGISTRY[ProviderType(provider_type)].wire_format
    url = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1/models"
    listed = httpx.get(url, headers=token_header(wire, deployment.token.secret)).json()
    names = {
        WireFormat.OPENAI: lambda d: [m["id"] for m in d["data"]],
        WireFormat.ANTHROPIC: lambda d: [m["id"] for m in d["data"]],
        WireFormat.GOOGLE: lambda d: [m["name"].removeprefix("models/") for m in d["models"]],
    }[wire](listed)
    assert names == [MODELS[provider_type]]
    assert deployment.fake.calls() == []  # answered from the catalog, not the provider
    assert not deployment.usage().exists()


@pytest.mark.parametrize("provider_type", list(CENTRAL))
def test_a_model_is_retrieved_by_its_id_only_if_the_caller_may_use_it(
    gateway_server, deployment, provider_type
):
    """``GET models/{model}`` (the SDKs' ``models.retrieve`` and Google's ``models.get``):
    the listing's entry for that model, or a 404 in the caller's format. Ids with a slash
    (OpenRouter's, Vercel's) work as sent or encoded, as the OpenAI SDK sends them."""
    import httpx

    wire = REGISTRY[ProviderType(provider_type)].wire_format
    base = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1/models"
    headers = token_header(wire, deployment.token.secret)
    model = MODELS[provider_type]
    listed = httpx.get(base, headers=headers).json()
    [entry] = listed["models"] if wire == WireFormat.GOOGLE else listed["data"]

    for sent in {model, model.replace("/", "%2F")}:
        found = httpx.get(f"{base}/{sent}", headers=headers)
        assert found.status_code == 200, found.text
        assert found.json() == entry
    unknown = httpx.get(f"{base}/not-a-model", headers=headers)
    ModelConfig.objects.filter(provider__type=provider_type).update(enabled=False)
    disabled = httpx.get(f"{base}/{model}", headers=headers)

    for refused in (unknown, disabled):
        assert refused.status_code == 404
        error = refused.json()["error"]
        if wire == WireFormat.OPENAI:
            assert error["code"] == "model_not_found" and error["type"] == "not_found_error"
        elif wire == WireFormat.ANTHROPIC:
            assert refused.json()["type"] == "error" and error["type"] == "not_found_error"
        else:
            assert (error["code"], error["status"]) == (404, "NOT_FOUND")
        assert "is not available to you" in error["message"]
    assert deployment.fake.calls() == []  # answered from the catalog, not the provider
    assert not deployment.usage().exists()


def test_a_model_of_a_provider_the_caller_cannot_use_is_refused_with_the_reason(
    gateway_server, deployment
):
    import httpx

    Provider.objects.filter(type="anthropic").update(
        user_keys_allowed=True, central_key_fallback=False
    )
    refused = httpx.get(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/models/claude-fake",
        headers=token_header(WireFormat.ANTHROPIC, deployment.token.secret),
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "user_api_key_required"
    assert not deployment.usage().exists()


NEVER_STREAMED = [  # (provider type, path after /v1, body, the answer's mark, metered)
    ("openai", "/responses/compact", {"input": "a long talk"}, "response.compaction", True),
    ("openai", "/responses/input_tokens", {"input": "hi"}, "response.input_tokens", False),
    ("anthropic", "/messages/count_tokens", {"messages": MESSAGES}, "input_tokens", False),
    ("aws-bedrock", "/messages/count_tokens", {"messages": MESSAGES}, "input_tokens", False),
    ("google", "/models/gemini-fake:countTokens", GOOGLE_BODY, "totalTokens", False),
    ("google", "/models/gemini-fake:generateContent", GOOGLE_BODY, "candidates", True),
]


@pytest.mark.parametrize("provider_type, path, body, mark, metered", NEVER_STREAMED)
def test_an_endpoint_that_never_streams_is_answered_whole_whatever_the_body_says(
    gateway_server, deployment, provider_type, path, body, mark, metered
):
    """Token counts, Codex's compaction and Google's generateContent answer one JSON body: a
    ``"stream": true`` in the request must not make the gateway read that answer as a
    stream (Bedrock's count, read as an event stream, was a 502) or meter it as one."""
    import httpx

    wire = REGISTRY[ProviderType(provider_type)].wire_format
    sent = {"model": MODELS[provider_type], **body, "stream": True}
    if wire == WireFormat.GOOGLE:
        sent.pop("model")
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/{provider_type}/v1{path}",
        json=sent,
        headers=token_header(wire, deployment.token.secret),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert mark in response.text
    (row,) = wait_for_usage(1)
    assert not row.streamed and row.error_kind == ""
    assert (row.output_tokens > 0) is metered


def test_a_grounded_google_call_is_billed_for_what_its_tools_fed_the_model(
    gateway_server, deployment
):
    """With Google Search on, Google reports the search results it fed the model apart from
    the prompt (toolUsePromptTokenCount) and bills them as input: the row counts them, the
    same streamed or not."""
    import httpx

    from fakeprovider.answers import GOOGLE_TOOL_PROMPT_TOKENS

    base = f"{gateway_server}/api/v2/aibridge/google/v1/models/gemini-fake"
    headers = token_header(WireFormat.GOOGLE, deployment.token.secret)
    body = {
        "contents": [{"role": "user", "parts": [{"text": "news today"}]}],
        "tools": [{"googleSearch": {}}],
    }
    for action in ("generateContent", "streamGenerateContent"):
        response = httpx.post(f"{base}:{action}", json=body, headers=headers)
        assert response.status_code == 200
    plain, streamed = wait_for_usage(2)
    assert (plain.streamed, streamed.streamed) == (False, True)
    reported = response.text.rsplit('"usageMetadata":', 1)[1]
    assert f'"toolUsePromptTokenCount":{GOOGLE_TOOL_PROMPT_TOKENS}' in reported.replace(" ", "")
    assert plain.input_tokens > GOOGLE_TOOL_PROMPT_TOKENS
    for row in (plain, streamed):
        assert (row.input_tokens, row.output_tokens) == (plain.input_tokens, plain.output_tokens)
        # The queries it searched are billed too (test_web_searches_are_billed_per_search...).
        searches = row.web_searches
        assert row.cost_usd == expected_cost(row.input_tokens, row.output_tokens, 4, 0, 0, searches)


@pytest.mark.parametrize("provider_type", ["anthropic", "aws-bedrock"])
def test_cache_writes_kept_an_hour_are_billed_at_the_hour_price(
    gateway_server, deployment, provider_type
):
    """A Claude call that caches its system prompt for an hour (``ttl: "1h"``) writes that
    entry at twice the input price. The row prices those writes at the model's one-hour
    price, the same streamed or not; before, they were priced as five-minute writes. With no
    one-hour price set, the call's cost is unknown, not understated."""
    import httpx

    from fakeprovider.answers import CACHE_WRITE_TOKENS

    url = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1/messages"
    headers = token_header(WireFormat.ANTHROPIC, deployment.token.secret)
    body = {
        "model": MODELS[provider_type],
        "max_tokens": 64,
        "system": [
            {
                "type": "text",
                "text": "the rules",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": MESSAGES,
    }
    for stream in (False, True):
        response = httpx.post(url, json={**body, "stream": stream}, headers=headers)
        assert response.status_code == 200, response.text
        assert '"ephemeral_1h_input_tokens":2' in response.text.replace(" ", "")
    wait_for_usage(2)
    ModelConfig.objects.filter(provider__type=provider_type).update(cache_write_1h_price=None)
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    plain, streamed, unpriced = wait_for_usage(3)
    for row in (plain, streamed):
        tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens)
        assert tokens == (plain.input_tokens, plain.output_tokens, plain.cache_read_tokens)
        assert row.cache_write_tokens == CACHE_WRITE_TOKENS
        assert row.cost_usd == expected_cost(*tokens, CACHE_WRITE_TOKENS, CACHE_WRITE_TOKENS)
    assert unpriced.cache_write_tokens == CACHE_WRITE_TOKENS and unpriced.cost_usd is None


@pytest.mark.parametrize("provider_type", ["anthropic", "openai", "google"])
def test_a_call_over_the_long_context_threshold_is_billed_at_the_long_context_prices(
    gateway_server, deployment, provider_type
):
    """Claude's 1M context, Gemini Pro and some OpenAI models charge more for a long prompt
    (about 2x in, 1.5x out). With a threshold below the fake's prompt, the row prices the
    call at the model's long-context prices and its cache at twice its price, the same
    streamed or not; a changed threshold applies from the next call."""
    from decimal import Decimal

    import httpx

    ModelConfig.objects.filter(provider__type=provider_type).update(
        long_context_threshold=5, long_context_input_price=6, long_context_output_price="22.5"
    )
    wire = REGISTRY[ProviderType(provider_type)].wire_format
    headers = token_header(wire, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1"
    body: dict[str, Any]
    streaming: tuple[str, dict[str, Any]]
    if wire == WireFormat.GOOGLE:
        url, body = f"{base}/models/{MODELS[provider_type]}:generateContent", GOOGLE_BODY
        streaming = (f"{base}/models/{MODELS[provider_type]}:streamGenerateContent", body)
    else:
        url = f"{base}/messages" if wire == WireFormat.ANTHROPIC else f"{base}/chat/completions"
        body = {"model": MODELS[provider_type], "max_tokens": 64, "messages": MESSAGES}
        streaming = (url, {**body, "stream": True})
    for target, sent in ((url, body), streaming):
        response = httpx.post(target, json=sent, headers=headers)
        assert response.status_code == 200, response.text
    plain, streamed = wait_for_usage(2)
    ModelConfig.objects.filter(provider__type=provider_type).update(long_context_threshold=10**6)
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    *_, short = wait_for_usage(3)

    assert streamed.streamed and not plain.streamed
    for row in (plain, streamed, short):
        assert row.input_tokens + row.cache_read_tokens + row.cache_write_tokens > 5
    tokens = (plain.input_tokens, plain.output_tokens, plain.cache_read_tokens)
    cache = plain.cache_read_tokens * Decimal("0.3") + plain.cache_write_tokens * 4
    long_cost = plain.input_tokens * 6 + plain.output_tokens * Decimal("22.5") + cache * 2
    for row in (plain, streamed):
        assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == tokens
        assert row.cost_usd == (long_cost / 1_000_000).quantize(Decimal("0.000000001"))
    assert short.cost_usd == expected_cost(*tokens, plain.cache_write_tokens)


@pytest.mark.parametrize("provider_type", ["openrouter", "vercel-ai-gateway"])
def test_cache_writes_reported_in_the_openai_format_are_billed_as_cache_writes(
    gateway_server, deployment, provider_type
):
    """OpenRouter and Vercel route Claude calls that mark content ``cache_control`` and
    report the prompt written to the cache in ``prompt_tokens_details.cache_write_tokens``
    (Responses: ``input_tokens_details``), inside the prompt's count. The row counts them as
    cache writes at the cache-write price, the same streamed or not; before, they were input."""
    import httpx

    from fakeprovider.answers import CACHE_WRITE_TOKENS

    base = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1"
    headers = token_header(WireFormat.OPENAI, deployment.token.secret)
    marked = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "the rules", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ]
    model = MODELS[provider_type]
    calls = [
        ("chat/completions", {"model": model, "messages": marked}),
        ("chat/completions", {"model": model, "messages": marked, "stream": True}),
        ("responses", {"model": model, "input": marked}),
        ("responses", {"model": model, "input": marked, "stream": True}),
    ]
    for path, body in calls:
        response = httpx.post(f"{base}/{path}", json=body, headers=headers)
        assert response.status_code == 200, response.text
    rows = wait_for_usage(len(calls))
    assert [row.streamed for row in rows] == [False, True, False, True]
    for row in rows:
        assert row.cache_write_tokens == CACHE_WRITE_TOKENS and row.cache_read_tokens == 4
        assert row.input_tokens == rows[0].input_tokens  # the writes taken out of the prompt
        tokens = (row.input_tokens, row.output_tokens, 4, CACHE_WRITE_TOKENS)
        assert row.cost_usd == expected_cost(*tokens)


SEARCH_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    # Claude's web search tool, counted in usage.server_tool_use (the stream's message_delta).
    "anthropic": (
        "messages",
        {
            "model": MODELS["anthropic"],
            "max_tokens": 64,
            "messages": MESSAGES,
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        },
    ),
    # OpenAI's web search tool: each search an output item of the response.
    "openai": (
        "responses",
        {"model": MODELS["openai"], "input": "hi", "tools": [{"type": "web_search"}]},
    ),
    # Google Search grounding: the queries in the candidates' grounding metadata.
    "google": (
        f"models/{MODELS['google']}:generateContent",
        {**GOOGLE_BODY, "tools": [{"googleSearch": {}}]},
    ),
}


@pytest.mark.parametrize("provider_type", list(SEARCH_CALLS))
def test_web_searches_are_billed_per_search_streamed_or_not(
    gateway_server, deployment, provider_type
):
    """Claude Code's and Codex's web searches and Gemini's Search grounding run on the
    provider, billed per search on top of the tokens (10 USD per 1,000 here); before, they
    cost nothing in the rows. Each row counts the fake's two searches and prices them, the
    same streamed or not; with the model's search price cleared, the cost is unknown."""
    import httpx

    from fakeprovider.answers import WEB_SEARCH_QUERIES

    wire = REGISTRY[ProviderType(provider_type)].wire_format
    headers = token_header(wire, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge/{provider_type}/v1"
    path, body = SEARCH_CALLS[provider_type]
    if wire == WireFormat.GOOGLE:
        streaming = (path.replace(":generateContent", ":streamGenerateContent"), body)
    else:
        streaming = (path, {**body, "stream": True})
    plain_call = (path, body)
    for target, sent in (plain_call, streaming):
        response = httpx.post(f"{base}/{target}", json=sent, headers=headers)
        assert response.status_code == 200, response.text
    plain, streamed = wait_for_usage(2)
    ModelConfig.objects.filter(provider__type=provider_type).update(web_search_price=None)
    for target, sent in (plain_call, streaming):
        assert httpx.post(f"{base}/{target}", json=sent, headers=headers).status_code == 200
    *_, unpriced_plain, unpriced_streamed = wait_for_usage(4)

    searches = len(WEB_SEARCH_QUERIES)
    assert streamed.streamed and not plain.streamed
    for row in (plain, streamed, unpriced_plain, unpriced_streamed):
        assert row.web_searches == searches
    tokens = (plain.input_tokens, plain.output_tokens, plain.cache_read_tokens)
    assert (streamed.input_tokens, streamed.output_tokens, streamed.cache_read_tokens) == tokens
    for row in (plain, streamed):
        writes = (row.cache_write_tokens, 0)
        assert row.cost_usd == expected_cost(*tokens, *writes, searches=searches)
        assert row.cost_usd > expected_cost(*tokens, *writes)
    assert unpriced_plain.cost_usd is None and unpriced_streamed.cost_usd is None


def test_gemini_2_grounding_is_billed_once_per_prompt_gemini_3_per_query(
    gateway_server, deployment
):
    """Google bills Search grounding per query on Gemini 3, but per grounded prompt on
    Gemini 2.x and older: a 2.x call that ran the fake's two queries is one search on its
    row and in its cost, streamed or not; a Gemini 3 model's call is two."""
    import httpx

    headers = token_header(WireFormat.GOOGLE, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge/google/v1beta/models"
    body = {**GOOGLE_BODY, "tools": [{"googleSearch": {}}]}
    counted: dict[str, list[Any]] = {}
    for identifier in ("gemini-2.5-flash", "gemini-3-pro-preview"):
        ModelConfig.objects.filter(provider__type="google").update(identifier=identifier)
        for method in ("generateContent", "streamGenerateContent"):
            url = f"{base}/{identifier}:{method}"
            assert httpx.post(url, json=body, headers=headers).status_code == 200
        counted[identifier] = wait_for_usage(2 * len(counted) + 2)[-2:]

    for identifier, billed in (("gemini-2.5-flash", 1), ("gemini-3-pro-preview", 2)):
        plain, streamed = counted[identifier]
        assert streamed.streamed and not plain.streamed
        for row in (plain, streamed):
            assert row.model_identifier == identifier and row.web_searches == billed
            tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, 0)
            assert row.cost_usd == expected_cost(*tokens, searches=billed)


def test_a_call_on_the_flex_priority_or_ultrafast_tier_is_billed_at_that_tier(
    gateway_server, deployment
):
    """OpenAI bills a call on the flex tier at half its prices, one on the priority tier
    ("fast" on newer models) at more (twice for GPT-5), one on the ultrafast tier at 6 times
    (GPT-6 Astra); its answer names the tier it ran on. Each row costs the tokens times the
    model's factor for that tier, chat or responses, streamed or not; a tier without a
    factor, or one OpenAI adds later, is unknown; OpenRouter naming a tier in passing
    changes nothing."""
    import httpx

    ModelConfig.objects.filter(provider__type="openai").update(
        flex_price_factor="0.5", priority_price_factor=2, ultrafast_price_factor=6
    )
    headers = token_header(WireFormat.OPENAI, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge/openai/v1"
    chat = {"model": MODELS["openai"], "messages": MESSAGES}
    responses = {"model": MODELS["openai"], "input": "hi"}
    calls = [
        (path, {**body, "service_tier": tier, **streamed})
        for tier in ("flex", "priority", "fast", "ultrafast")
        for path, body in (("chat/completions", chat), ("responses", responses))
        for streamed in ({}, {"stream": True})
    ]
    for path, body in calls:
        response = httpx.post(f"{base}/{path}", json=body, headers=headers)
        assert response.status_code == 200, response.text
    rows = wait_for_usage(len(calls))
    ModelConfig.objects.filter(provider__type="openai").update(priority_price_factor=None)
    response = httpx.post(f"{base}/chat/completions", json=calls[4][1], headers=headers)
    assert response.status_code == 200
    later = {**chat, "service_tier": "hyperfast"}
    assert httpx.post(f"{base}/chat/completions", json=later, headers=headers).status_code == 200
    routed = {**chat, "model": MODELS["openrouter"], "service_tier": "priority"}
    router = f"{gateway_server}/api/v2/aibridge/openrouter/v1/chat/completions"
    assert httpx.post(router, json=routed, headers=headers).status_code == 200
    *_, unpriced, unknown_tier, via_router = wait_for_usage(len(calls) + 3)

    factors = {"flex": Decimal("0.5"), "priority": 2, "fast": 2, "ultrafast": 6}
    assert unknown_tier.price_variants == "unknown" and via_router.price_variants == ""
    for row, (_, body) in zip(rows, calls, strict=True):
        assert row.price_variants == (
            "priority" if body["service_tier"] == "fast" else body["service_tier"]
        )
        tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, 0)
        factor = factors[body["service_tier"]]
        assert row.streamed == bool(body.get("stream"))
        assert row.cost_usd == (expected_cost(*tokens) * factor).quantize(Decimal("1e-9"))
    assert unpriced.cost_usd is None and unpriced.input_tokens > 0
    assert unknown_tier.cost_usd is None and unknown_tier.input_tokens > 0
    tokens = (via_router.input_tokens, via_router.output_tokens, via_router.cache_read_tokens, 0)
    assert via_router.cost_usd == expected_cost(*tokens)


def test_a_gemini_call_is_billed_at_the_tier_it_was_served_on(gateway_server, deployment):
    """Gemini serves a call on the flex tier (half the usual prices) or the priority tier
    (75 to 100% more) when asked, and names the tier served in x-gemini-service-tier (a
    priority call over its limit falls back to standard). Each row costs its tokens times
    the model's factor for the tier served, streamed or not; standard the usual prices; a
    tier without a factor, or one Gemini adds later, unknown."""
    import httpx

    ModelConfig.objects.filter(provider__type="google").update(
        flex_price_factor="0.5", priority_price_factor="1.8"
    )
    headers = token_header(WireFormat.GOOGLE, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge/google/v1beta/models/{MODELS['google']}"
    tiers = {"flex": Decimal("0.5"), "priority": Decimal("1.8"), "standard": 1, "turbo": None}
    calls = [
        (method, tier) for tier in tiers for method in ("generateContent", "streamGenerateContent")
    ]
    for method, tier in calls:
        body = {**GOOGLE_BODY, "serviceTier": tier}
        response = httpx.post(f"{base}:{method}", json=body, headers=headers)
        assert response.status_code == 200, response.text
    rows = wait_for_usage(len(calls))

    for row, (method, tier) in zip(rows, calls, strict=True):
        assert row.streamed == (method == "streamGenerateContent")
        assert row.price_variants == {"standard": "", "turbo": "unknown"}.get(tier, tier)
        factor = tiers[tier]
        if factor is None:
            assert row.cost_usd is None and row.input_tokens > 0
            continue
        tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, 0)
        assert row.cost_usd == (expected_cost(*tokens) * factor).quantize(Decimal("1e-9"))


def test_anthropics_fast_mode_and_us_only_inference_are_billed_at_their_factors(
    gateway_server, deployment
):
    """Claude Code's /fast runs Claude Opus in fast mode (speed "fast"), billed at 6 times
    the usual prices on Opus 4.6 and twice on later ones; a call run only in the US
    (inference_geo "us") at 1.1 times; both, at both. Anthropic says so in the call's usage
    (in a stream's message_start). Each call costs its tokens times the model's factors,
    streamed or not; a standard, global call the usual prices; with a factor it needs blank,
    unknown. Bedrock, whose region is its endpoint's, is not priced by them."""
    import httpx

    factors = {"us_inference_price_factor": "1.1", "fast_mode_price_factor": 6}
    ModelConfig.objects.filter(provider__type="anthropic").update(**factors)
    headers = token_header(WireFormat.ANTHROPIC, deployment.token.secret)
    base = f"{gateway_server}/api/v2/aibridge"
    body = {"model": MODELS["anthropic"], "max_tokens": 64, "messages": MESSAGES}
    us = {**body, "inference_geo": "us"}
    fast = {**body, "speed": "fast"}
    bedrock = {**us, "model": MODELS["aws-bedrock"], "speed": "fast"}
    calls = [
        ("anthropic", us),
        ("anthropic", {**us, "stream": True}),
        ("anthropic", fast),
        ("anthropic", {**fast, "stream": True, "inference_geo": "us"}),
        ("anthropic", {**body, "inference_geo": "global", "speed": "standard"}),
        ("aws-bedrock", bedrock),
    ]
    for provider_type, sent in calls:
        response = httpx.post(f"{base}/{provider_type}/v1/messages", json=sent, headers=headers)
        assert response.status_code == 200, response.text
    rows = wait_for_usage(len(calls))
    ModelConfig.objects.filter(provider__type="anthropic").update(fast_mode_price_factor=None)
    response = httpx.post(f"{base}/anthropic/v1/messages", json=fast, headers=headers)
    assert response.status_code == 200
    *_, unpriced = wait_for_usage(len(calls) + 1)

    expected = [Decimal("1.1"), Decimal("1.1"), 6, Decimal("6.6"), 1, 1]
    ran = ["us_inference", "us_inference", "fast", "fast,us_inference", "", ""]
    assert [row.price_variants for row in rows] == ran  # Bedrock's: not priced, not shown
    for row, factor in zip(rows, expected, strict=True):
        tokens = (
            row.input_tokens,
            row.output_tokens,
            row.cache_read_tokens,
            row.cache_write_tokens,
        )
        assert row.cost_usd == (expected_cost(*tokens) * factor).quantize(Decimal("1e-9"))
    assert rows[3].streamed and rows[5].provider_type == "aws-bedrock"
    assert unpriced.cost_usd is None and unpriced.input_tokens > 0


def test_a_call_without_web_searches_needs_no_search_price(gateway_server, deployment):
    import httpx

    ModelConfig.objects.filter(provider__type="anthropic").update(web_search_price=None)
    headers = token_header(WireFormat.ANTHROPIC, deployment.token.secret)
    body = {"model": MODELS["anthropic"], "max_tokens": 64, "messages": MESSAGES}
    url = f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages"
    assert httpx.post(url, json=body, headers=headers).status_code == 200
    (row,) = wait_for_usage(1)
    assert row.web_searches == 0
    tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)
    assert row.cost_usd == expected_cost(*tokens)


def test_a_byok_key_is_refused_where_user_keys_are_not_allowed(gateway_server, deployment):
    import httpx

    Provider.objects.filter(type="openai").update(
        user_keys_allowed=False, central_key_fallback=False
    )
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/openai/v1/chat/completions",
        json={"model": "fake-gpt", "messages": [{"role": "user", "content": "x"}]},
        headers={
            "X-Coder-AI-Governance-Token": deployment.token.secret,
            "Authorization": f"Bearer {BYOK_KEY}",
        },
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "user_keys_not_allowed"
    assert deployment.fake.calls() == []


def test_credentials_in_the_query_string_are_never_passed_on(gateway_server, deployment):
    """A caller's ``?key=`` (Google's own way to pass a key) or any other credential
    parameter, however spelled, never reaches the provider: that would hand it the platform
    token. The rest of the query goes on as it came. Nor is ``?key=`` taken as the platform
    token: without one in a header the call is a 401."""
    import httpx

    token = deployment.token.secret
    base = f"{gateway_server}/api/v2/aibridge/google/v1/models/{MODELS['google']}"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    query = (
        f"key={token}&KEY={token}&%6Bey={token}&access_token={token}&api_key=x&keep=1&k=2"
        f"&token={token}&t=Bearer+{token}&{token}=1"
    )
    plain = httpx.post(
        f"{base}:generateContent?{query}", json=body, headers={"x-goog-api-key": token}
    )
    stream = httpx.post(
        f"{base}:streamGenerateContent?{query}", json=body, headers={"x-goog-api-key": token}
    )
    assert (plain.status_code, stream.status_code) == (200, 200)
    received = deployment.fake.calls()
    assert [r.query for r in received] == ["keep=1&k=2", "keep=1&k=2&alt=sse"]
    assert all(r.headers["x-goog-api-key"] == CENTRAL["google"] for r in received)

    deployment.fake.clear()
    only_in_query = httpx.post(f"{base}:generateContent?key={token}", json=body)
    assert only_in_query.status_code == 401
    assert only_in_query.json()["error"]["status"] == "UNAUTHENTICATED"
    assert deployment.fake.calls() == []


def test_a_repeated_header_reaches_the_provider_whole(gateway_server, deployment):
    """Two ``anthropic-beta`` headers are one list (RFC 9110): both values go on, joined, not
    only the last one. The credential is still the one the gateway injects."""
    import httpx

    token = deployment.token.secret
    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/anthropic/v1/messages",
        json={
            "model": MODELS["anthropic"],
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=[
            ("x-api-key", token),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
            ("anthropic-beta", "output-128k-2025-02-19"),
            ("x-api-key", token),
        ],
    )
    assert response.status_code == 200, response.text
    [received] = deployment.fake.calls()
    assert received.headers["anthropic-beta"] == "prompt-caching-2024-07-31, output-128k-2025-02-19"
    assert received.headers["x-api-key"] == CENTRAL["anthropic"]


def test_an_endpoint_with_a_trailing_slash_reaches_the_provider_as_documented(
    gateway_server, deployment
):
    """``/chat/completions/`` is the chat endpoint here; the provider gets the path it
    documents, not one it may not know."""
    import httpx

    response = httpx.post(
        f"{gateway_server}/api/v2/aibridge/openai/v1/chat/completions/",
        json={"model": MODELS["openai"], "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {deployment.token.secret}"},
    )
    assert response.status_code == 200, response.text
    assert [r.path for r in deployment.fake.calls()] == ["/v1/chat/completions"]
