"""The official SDKs, pointed at the gateway with a platform token as their api_key, at the
base URLs Settings → Tokens shows (``routing.deployment.tool_setup``)."""

from __future__ import annotations

from typing import Any

import pytest

from routing.deployment import tool_setup

from .conftest import CENTRAL, wait_for_usage

pytestmark = pytest.mark.django_db(transaction=True)


def openai_client(base: str, token: str) -> Any:
    from openai import OpenAI

    return OpenAI(api_key=token, base_url=tool_setup("openai", base).base_url, max_retries=0)


def anthropic_client(base: str, token: str, provider_type: str) -> Any:
    from anthropic import Anthropic

    base_url = tool_setup(provider_type, base).base_url
    return Anthropic(api_key=token, base_url=base_url, max_retries=0)


def same_usage(rows):
    """A streamed and a plain call with the same tokens give equal rows."""
    plain, streamed = rows
    assert not plain.streamed and streamed.streamed
    fields = (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "status",
        "credential_source",
        "model_identifier",
    )
    assert [getattr(plain, f) for f in fields] == [getattr(streamed, f) for f in fields]
    assert plain.input_tokens > 0 and plain.cost_usd > 0


def test_the_openai_sdk(gateway_server, deployment):
    client = openai_client(gateway_server, deployment.token.secret)
    messages = [{"role": "user", "content": "hello sdk"}]
    reply = client.chat.completions.create(model="fake-gpt", messages=messages)
    assert reply.choices[0].message.content == "You said: hello sdk"
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    chunks = list(client.chat.completions.create(model="fake-gpt", messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: hello sdk"
    assert all(c.usage is None for c in chunks)  # it did not ask for usage: none shown
    same_usage(wait_for_usage(2))
    for received in deployment.fake.calls():
        assert received.headers["authorization"] == f"Bearer {CENTRAL['openai']}"
    listed = [m.id for m in client.models.list()]
    assert listed == ["fake-gpt"]
    assert client.models.retrieve("fake-gpt").id == "fake-gpt"


def test_the_openai_sdk_completions_api(gateway_server, deployment):
    """The older completions API, which editors' autocomplete calls (fill in the middle)."""
    client = openai_client(gateway_server, deployment.token.secret)
    prompt, suffix = "def add(a, b):", "\n"
    completion = client.completions.create(model="fake-gpt", prompt=prompt, suffix=suffix)
    assert completion.choices[0].text == "You said: def add(a, b):"
    chunks = list(
        client.completions.create(model="fake-gpt", prompt=prompt, suffix=suffix, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == completion.choices[0].text
    assert all(c.usage is None for c in chunks)  # it did not ask for usage: none shown
    same_usage(wait_for_usage(2))


def test_the_openai_sdk_responses_api(gateway_server, deployment):
    client = openai_client(gateway_server, deployment.token.secret)
    response = client.responses.create(model="fake-gpt", input="hello there")
    assert response.output_text == "You said: hello there"
    events = list(client.responses.create(model="fake-gpt", input="hello there", stream=True))
    assert events[-1].type == "response.completed"
    counted = client.responses.input_tokens.count(model="fake-gpt", input="hello there")
    assert counted.input_tokens == response.usage.input_tokens
    # Codex's remote compaction of a long conversation.
    compacted = client.responses.compact(model="fake-gpt", input="hello there")
    assert compacted.output[0].type == "compaction"
    assert compacted.usage.input_tokens == response.usage.input_tokens
    rows = wait_for_usage(4)
    same_usage(rows[:2])
    assert rows[2].endpoint == "responses.input_tokens" and rows[2].cost_usd == 0
    assert rows[3].endpoint == "responses.compact" and rows[3].cost_usd == rows[0].cost_usd


def test_the_openai_sdk_sees_a_clear_error(gateway_server, deployment):
    import openai

    client = openai_client(gateway_server, deployment.token.secret)
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-unknown", messages=[])
    assert error.value.body["code"] == "model_not_found"
    assert "Models you can use here: fake-gpt." in error.value.body["message"]
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-unknown")
    assert missing.value.body["code"] == "model_not_found"
    bad = openai.OpenAI(api_key="llmcp_nope", base_url=client.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="fake-gpt", messages=[])


def test_the_anthropic_sdk(gateway_server, deployment):
    client = anthropic_client(gateway_server, deployment.token.secret, "anthropic")
    messages = [{"role": "user", "content": "hello sdk"}]
    reply = client.messages.create(model="claude-fake", max_tokens=64, messages=messages)
    assert reply.content[0].text == "You said: hello sdk"
    assert reply.usage.cache_read_input_tokens == 4
    with client.messages.stream(model="claude-fake", max_tokens=64, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "You said: hello sdk" and final.usage.output_tokens == reply.usage.output_tokens
    count = client.messages.count_tokens(model="claude-fake", messages=messages)
    assert count.input_tokens == reply.usage.input_tokens
    rows = wait_for_usage(3)
    same_usage(rows[:2])
    assert rows[2].endpoint == "messages.count_tokens"
    assert [m.id for m in client.models.list()] == ["claude-fake"]
    assert client.models.retrieve("claude-fake").display_name == "Fake anthropic"


def test_the_anthropic_sdk_through_bedrock(gateway_server, deployment):
    client = anthropic_client(gateway_server, deployment.token.secret, "aws-bedrock")
    model = "anthropic.claude-fake-v1:0"
    messages = [{"role": "user", "content": "via bedrock"}]
    reply = client.messages.create(model=model, max_tokens=64, messages=messages)
    assert reply.content[0].text == "You said: via bedrock"
    with client.messages.stream(model=model, max_tokens=64, messages=messages) as stream:
        assert "".join(stream.text_stream) == "You said: via bedrock"
    count = client.messages.count_tokens(model=model, messages=messages)
    assert count.input_tokens == reply.usage.input_tokens
    rows = wait_for_usage(3)
    same_usage(rows[:2])
    assert rows[2].endpoint == "messages.count_tokens"
    paths = [r.path for r in deployment.fake.calls()]
    assert paths == [
        f"/model/{model}/invoke",
        f"/model/{model}/invoke-with-response-stream",
        f"/model/{model}/count-tokens",
    ]


def test_the_google_genai_sdk(gateway_server, deployment):
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=deployment.token.secret,
        http_options=types.HttpOptions(
            base_url=f"{gateway_server}/api/v2/aibridge/google", api_version="v1"
        ),
    )
    reply = client.models.generate_content(model="gemini-fake", contents="hello sdk")
    assert reply.text == "You said: hello sdk"
    assert reply.usage_metadata.cached_content_token_count == 4
    streamed = "".join(
        chunk.text or ""
        for chunk in client.models.generate_content_stream(
            model="gemini-fake", contents="hello sdk"
        )
    )
    assert streamed == "You said: hello sdk"
    same_usage(wait_for_usage(2))
    for received in deployment.fake.calls():
        assert received.headers["x-goog-api-key"] == CENTRAL["google"]
    assert [m.name for m in client.models.list()] == ["models/gemini-fake"]
    assert client.models.get(model="gemini-fake").name == "models/gemini-fake"
    counted = client.models.count_tokens(model="gemini-fake", contents="hello sdk")
    assert counted.total_tokens == reply.usage_metadata.prompt_token_count
    assert wait_for_usage(3)[2].endpoint == "countTokens"


def test_the_google_genai_sdk_with_its_default_api_version(gateway_server, deployment):
    """Given only the base URL, as Gemini CLI's GOOGLE_GEMINI_BASE_URL does, the SDK calls
    v1beta: the same endpoints, the same provider calls."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=deployment.token.secret,
        http_options=types.HttpOptions(base_url=tool_setup("google", gateway_server).base_url),
    )
    reply = client.models.generate_content(model="gemini-fake", contents="hello sdk")
    assert reply.text == "You said: hello sdk"
    streamed = client.models.generate_content_stream(model="gemini-fake", contents="hello sdk")
    assert "".join(chunk.text or "" for chunk in streamed) == "You said: hello sdk"
    assert [m.name for m in client.models.list()] == ["models/gemini-fake"]
    same_usage(wait_for_usage(2))
    paths = [r.path for r in deployment.fake.calls()]
    assert paths == [
        "/v1beta/models/gemini-fake:generateContent",
        "/v1beta/models/gemini-fake:streamGenerateContent",
    ]


@pytest.mark.parametrize("delay", ["0", "0.05", "0.2"])
def test_every_sdks_stream_helper_reads_to_the_end_and_every_row_is_a_success(
    gateway_server, deployment, delay
):
    """The helpers close the connection as soon as they have the final event, whatever the
    upstream does next: each call is a 200 with its tokens, not a 499."""
    from google import genai
    from google.genai import types

    slow = {"x-fake-chunk-delay": delay}
    token = deployment.token.secret
    openai = openai_client(gateway_server, token)
    messages = [{"role": "user", "content": "stream it"}]
    with openai.chat.completions.stream(
        model="fake-gpt", messages=messages, extra_headers=slow
    ) as stream:
        for _ in stream:
            pass
        assert stream.get_final_completion().choices[0].message.content == "You said: stream it"
    with openai.responses.stream(model="fake-gpt", input="stream it", extra_headers=slow) as events:
        for _ in events:
            pass
        assert events.get_final_response().output_text == "You said: stream it"
    anthropic = anthropic_client(gateway_server, token, "anthropic")
    with anthropic.messages.stream(
        model="claude-fake", max_tokens=64, messages=messages, extra_headers=slow
    ) as messages_stream:
        assert "".join(messages_stream.text_stream) == "You said: stream it"
        assert messages_stream.get_final_message().stop_reason == "end_turn"
    google = genai.Client(
        api_key=token,
        http_options=types.HttpOptions(
            base_url=tool_setup("google", gateway_server).base_url, headers=slow
        ),
    )
    chunks = google.models.generate_content_stream(model="gemini-fake", contents="stream it")
    assert "".join(chunk.text or "" for chunk in chunks) == "You said: stream it"
    rows = wait_for_usage(4)
    assert [(r.status, r.error_kind, r.streamed) for r in rows] == [(200, "", True)] * 4
    assert all(r.input_tokens > 0 and r.output_tokens > 0 and r.cost_usd > 0 for r in rows)


WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
ASK = "Weather? [[fake: tool=get_weather; city=Paris]]"


def test_the_openai_sdk_makes_and_answers_a_tool_call_in_both_apis(gateway_server, deployment):
    import json

    client = openai_client(gateway_server, deployment.token.secret)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    asked = [{"role": "user", "content": ASK}]
    with client.chat.completions.stream(model="fake-gpt", messages=asked, tools=tools) as stream:
        for _ in stream:
            pass
        message = stream.get_final_completion().choices[0].message
    [call] = message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    answered = [
        *asked,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    reply = client.chat.completions.create(model="fake-gpt", messages=answered, tools=tools)
    assert reply.choices[0].message.content == "Tool said: 18C and sunny"

    function = {"type": "function", "name": "get_weather", "parameters": WEATHER}
    with client.responses.stream(model="fake-gpt", input=ASK, tools=[function]) as events:
        for _ in events:
            pass
        response = events.get_final_response()
    [item] = [i for i in response.output if i.type == "function_call"]
    assert json.loads(item.arguments) == {"city": "Paris"}
    result = {"type": "function_call_output", "call_id": item.call_id, "output": "18C"}
    follow = client.responses.create(
        model="fake-gpt", input=[{"role": "user", "content": ASK}, item.model_dump(), result]
    )
    assert follow.output_text == "Tool said: 18C"
    assert [r.status for r in wait_for_usage(4)] == [200] * 4


def test_the_anthropic_sdk_makes_and_answers_a_tool_call(gateway_server, deployment):
    client = anthropic_client(gateway_server, deployment.token.secret, "anthropic")
    tools = [{"name": "get_weather", "input_schema": WEATHER}]
    asked = [{"role": "user", "content": ASK}]
    with client.messages.stream(
        model="claude-fake", max_tokens=64, messages=asked, tools=tools
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [use] = [block for block in final.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "18C"}
    reply = client.messages.create(
        model="claude-fake",
        max_tokens=64,
        tools=tools,
        messages=[
            *asked,
            {"role": "assistant", "content": final.content},
            {"role": "user", "content": [result]},
        ],
    )
    assert reply.content[0].text.startswith("Tool said: 18C")


def test_the_google_genai_sdk_makes_and_answers_a_function_call(gateway_server, deployment):
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=deployment.token.secret,
        http_options=types.HttpOptions(base_url=tool_setup("google", gateway_server).base_url),
    )
    declared = types.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declared])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    chunks = list(
        client.models.generate_content_stream(model="gemini-fake", contents=ASK, config=config)
    )
    [call] = [
        part.function_call
        for c in chunks
        for part in c.candidates[0].content.parts
        if part.function_call
    ]
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    contents = [
        types.Content(role="user", parts=[types.Part(text=ASK)]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"t": "18C"})],
        ),
    ]
    reply = client.models.generate_content(model="gemini-fake", contents=contents, config=config)
    assert reply.text.startswith("Tool said:") and "18C" in reply.text


def test_structured_output_is_answered_with_json_that_follows_the_schema(
    gateway_server, deployment
):
    """Agents' utility calls (Gemini CLI's router, say) ask for JSON to a schema; the fake
    answers such JSON, so they never retry on an answer that is not."""
    import json

    client = openai_client(gateway_server, deployment.token.secret)
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1}, "why": {"type": "string"}},
        "required": ["score", "why"],
    }
    reply = client.chat.completions.create(
        model="fake-gpt",
        messages=[{"role": "user", "content": "rate it"}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content) == {"score": 1, "why": "fake"}


def test_the_sdks_never_see_a_rate_limited_or_refused_central_key(gateway_server, deployment):
    """Retries off: the SDKs get their answers from the next key, streamed or not; every
    key was asked in turn."""
    from providers.models import Provider
    from providers.services import provider_key_add, provider_set_key

    for provider_type, first in (("openai", "sk-fail-429-r30-a"), ("anthropic", "sk-invalid-b")):
        provider = Provider.objects.get(type=provider_type)
        provider_set_key(provider=provider, raw_key=first, actor=None)
        provider_key_add(
            provider=provider, label="spare", raw_key=f"sk-spare-{provider_type}", actor=None
        )
    openai = openai_client(gateway_server, deployment.token.secret)
    messages = [{"role": "user", "content": "hello sdk"}]
    reply = openai.chat.completions.create(model="fake-gpt", messages=messages)
    assert reply.choices[0].message.content == "You said: hello sdk"
    chunks = list(openai.chat.completions.create(model="fake-gpt", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    anthropic = anthropic_client(gateway_server, deployment.token.secret, "anthropic")
    for _ in range(2):
        message = anthropic.messages.create(model="claude-fake", max_tokens=20, messages=messages)
        assert message.content[0].text == "You said: hello sdk"
    with anthropic.messages.stream(model="claude-fake", max_tokens=20, messages=messages) as s:
        assert s.get_final_text() == "You said: hello sdk"
    rows = wait_for_usage(5)
    assert [row.status for row in rows] == [200] * 5
    assert {row.key_label for row in rows} == {"spare"}
    keys = [
        r.headers.get("authorization") or r.headers.get("x-api-key")
        for r in deployment.fake.calls()
    ]
    assert keys.count("Bearer sk-fail-429-r30-a") == 1 and keys.count("sk-invalid-b") == 1


def test_the_anthropic_sdk_gets_its_answer_from_a_fallback_model(gateway_server, deployment):
    """Anthropic fails (503) and Claude on Bedrock answers: the SDK (retries off) reads it
    as Anthropic's own answer, streamed or not."""
    from models_catalog.models import ModelConfig
    from models_catalog.services import model_fallbacks_set
    from providers.models import Provider
    from providers.services import provider_set_key

    provider = Provider.objects.get(type="anthropic")
    provider_set_key(provider=provider, raw_key="sk-fail-503-anthropic", actor=None)
    models = ModelConfig.objects.with_provider()
    model_fallbacks_set(
        model=models.get(provider__type="anthropic"),
        fallbacks=[models.get(provider__type="aws-bedrock")],
        actor=None,
    )
    client = anthropic_client(gateway_server, deployment.token.secret, "anthropic")
    messages = [{"role": "user", "content": "hello sdk"}]
    message = client.messages.create(model="claude-fake", max_tokens=20, messages=messages)
    assert message.content[0].text == "You said: hello sdk"
    with client.messages.stream(model="claude-fake", max_tokens=20, messages=messages) as s:
        assert s.get_final_text() == "You said: hello sdk"
    rows = wait_for_usage(2)
    assert {(r.provider_type, r.fallback_from, r.status) for r in rows} == {
        ("aws-bedrock", "anthropic/claude-fake", 200)
    }
