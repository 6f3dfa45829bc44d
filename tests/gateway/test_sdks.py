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
    with pytest.raises(openai.PermissionDeniedError) as error:
        client.chat.completions.create(model="gpt-unknown", messages=[])
    assert error.value.body["code"] == "model_not_allowed"
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
