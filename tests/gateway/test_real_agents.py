"""The real coding agents from npm (pinned in tests/agents/package-lock.json), run headless
against the gateway with the fake provider behind it, set up as docs/gateway.md says: each
prints the answer, its usage rows are 200s whose tokens are what the agent itself reports,
and the provider got the deployment's key, never the platform token.

`.ci/run` installs them (npm ci) and requires these tests; elsewhere they are skipped when
the agents are not installed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from models_catalog.models import ModelConfig
from models_catalog.services import alias_set
from providers.models import Provider

from .conftest import CENTRAL, wait_for_usage

pytestmark = [pytest.mark.agents, pytest.mark.django_db(transaction=True)]

AGENTS = Path(settings.BASE_DIR) / "tests" / "agents" / "node_modules" / ".bin"
TOOL_RAN = "fake-tool-ran"


@pytest.fixture(autouse=True)
def _the_agents_are_installed() -> None:
    if not (AGENTS / "claude").exists():
        message = "the coding agents are not installed: npm ci --prefix tests/agents"
        if os.environ.get("REQUIRE_AGENT_TESTS"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, Path]:
    """A home of their own for the agents (no user settings, no login), and a work folder."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    return {"home": tmp_path / "home", "work": tmp_path / "work"}


def answer_names(provider_type: str, pattern: str) -> None:
    """The agents ask for their own default models: answer them with the fake's."""
    provider = Provider.objects.get(type=provider_type)
    model = ModelConfig.objects.get(provider=provider)
    alias_set(provider=provider, pattern=pattern, model=model, actor=None)


def agent(args: list[str], env: dict[str, str], folders: dict[str, Path]) -> str:
    """Run an agent headless (no terminal, nothing on standard input); its standard output."""
    environment = {
        "PATH": f"{AGENTS}:{os.environ['PATH']}",
        "HOME": str(folders["home"]),
        "NO_COLOR": "1",
        **env,
    }
    result = subprocess.run(
        args,
        cwd=folders["work"],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def nothing_but_the_central_key_reached_the_fake(deployment: Any, provider_type: str) -> None:
    received = deployment.fake.calls()
    assert received
    header = {"anthropic": "x-api-key", "openai": "authorization", "google": "x-goog-api-key"}
    for request in received:
        assert CENTRAL[provider_type] in request.headers[header[provider_type]]
        assert deployment.token.secret not in repr(request.headers) + request.body.decode()


def claude_code_runs_a_tool(gateway_server: str, deployment: Any, home: dict[str, Path]) -> str:
    """claude -p through the gateway, asked to run Bash: its JSON report."""
    env = {
        "ANTHROPIC_BASE_URL": f"{gateway_server}/api/v2/aibridge/anthropic",
        "ANTHROPIC_AUTH_TOKEN": deployment.token.secret,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    prompt = f"Run it. [[fake: tool=Bash; command=echo {TOOL_RAN}]]"
    return agent(
        ["claude", "-p", prompt, "--allowedTools", "Bash", "--output-format", "json"], env, home
    )


def test_claude_code(gateway_server, deployment, home):
    """claude -p, two turns: the model asks for its Bash tool, Claude Code runs it and sends
    the result, the model answers with what the tool said."""
    answer_names("anthropic", "claude-*")
    printed = claude_code_runs_a_tool(gateway_server, deployment, home)
    report = json.loads(printed)
    assert report["result"] == f"Tool said: {TOOL_RAN}" and not report["is_error"]
    assert report["num_turns"] == 2
    rows = [r for r in wait_for_usage(2) if r.endpoint == "messages"]
    assert [(r.status, r.error_kind) for r in rows] == [(200, "")] * len(rows)
    used = report["usage"]
    assert sum(r.input_tokens for r in rows) == used["input_tokens"]
    assert sum(r.output_tokens for r in rows) == used["output_tokens"]
    assert sum(r.cache_read_tokens for r in rows) == used["cache_read_input_tokens"]
    assert sum(r.cache_write_tokens for r in rows) == used["cache_creation_input_tokens"]
    assert all(r.user_agent.startswith("claude-cli/") and r.cost_usd > 0 for r in rows)
    nothing_but_the_central_key_reached_the_fake(deployment, "anthropic")


def test_claude_code_through_a_provider_on_a_bad_day(gateway_server, deployment, home):
    """Anthropic's first central key is rate-limited and its second answers 503: each turn
    moves past the keys, then to the model's fallback on Bedrock. Claude Code (retries and
    all) sees only answers: two turns, its tool run, the tool's result answered."""
    from models_catalog.services import model_fallbacks_set
    from providers.services import provider_key_add, provider_set_key

    answer_names("anthropic", "claude-*")
    anthropic = Provider.objects.get(type="anthropic")
    provider_set_key(provider=anthropic, raw_key="sk-fail-429-r60-first", actor=None)
    provider_key_add(provider=anthropic, label="second", raw_key="sk-fail-503-b", actor=None)
    models = ModelConfig.objects.with_provider()
    model_fallbacks_set(
        model=models.get(provider=anthropic),
        fallbacks=[models.get(provider__type="aws-bedrock")],
        actor=None,
    )
    printed = claude_code_runs_a_tool(gateway_server, deployment, home)
    report = json.loads(printed)
    assert report["result"] == f"Tool said: {TOOL_RAN}" and not report["is_error"]
    assert report["num_turns"] == 2
    rows = [r for r in wait_for_usage(2) if r.endpoint == "messages"]
    assert rows and all(r.status == 200 for r in rows)
    turns = [r for r in rows if r.fallback_from]
    assert len(turns) >= 2 and {r.provider_type for r in turns} == {"aws-bedrock"}
    assert {r.fallback_from.split("/")[0] for r in turns} == {"anthropic"}
    assert Provider.objects.get(pk=anthropic.pk).key_cooling_until is not None
    sent = [
        r.headers.get("x-api-key") or r.headers.get("authorization")
        for r in deployment.fake.calls()
    ]
    assert deployment.token.secret not in repr(sent)


def test_claude_code_under_a_budget_settles_what_it_spent(gateway_server, deployment, home):
    """Claude Code's turns (tool call, result, answer) held from a budget and settled: the
    budget's spend is the sum of its calls' costs, nothing left held once it ends."""
    from decimal import Decimal

    from spend.models import NANO, Budget, BudgetCounter, Period, Scope

    answer_names("anthropic", "claude-*")
    budget = Budget.objects.create(
        scope=Scope.PERSON, user=deployment.developer, limit_usd=Decimal("100"), period=Period.DAY
    )
    printed = claude_code_runs_a_tool(gateway_server, deployment, home)
    assert json.loads(printed)["result"] == f"Tool said: {TOOL_RAN}"
    rows = [r for r in wait_for_usage(2) if r.endpoint == "messages"]
    assert rows and all(r.status == 200 and r.cost_usd for r in rows)
    counter = BudgetCounter.objects.get(budget=budget)
    assert counter.spent_nano == int(sum(r.cost_usd or 0 for r in rows) * NANO)


def test_codex(gateway_server, deployment, home):
    """codex exec: one tool call (its exec_command), run, and the answer printed."""
    provider = (
        'model_providers.llmcp={name="LLM Control Plane", '
        f'base_url="{gateway_server}/api/v2/aibridge/openai/v1", '
        'env_key="LLMCP_TOKEN", wire_api="responses"}'
    )
    args = ["codex", "exec", "--json", "--skip-git-repo-check", "-m", "fake-gpt"]
    args += ["-c", "model_provider=llmcp", "-c", provider]
    args += ["-c", "check_for_update_on_startup=false"]
    prompt = f"Run it. [[fake: tool=exec_command; cmd=echo {TOOL_RAN}]]"
    printed = agent([*args, prompt], {"LLMCP_TOKEN": deployment.token.secret}, home)
    events = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    said = [
        e["item"]["text"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]
    assert said[-1].startswith("Tool said:") and TOOL_RAN in said[-1]
    ran = [
        e["item"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"
    ]
    assert ran and TOOL_RAN in ran[0]["aggregated_output"]
    [turn] = [e["usage"] for e in events if e.get("type") == "turn.completed"]
    rows = [r for r in wait_for_usage(2) if r.endpoint == "responses"]
    assert [(r.status, r.error_kind, r.streamed) for r in rows] == [(200, "", True)] * len(rows)
    # Codex counts cached input inside its input; the rows keep it apart.
    assert sum(r.input_tokens + r.cache_read_tokens for r in rows) == turn["input_tokens"]
    assert sum(r.cache_read_tokens for r in rows) == turn["cached_input_tokens"]
    assert sum(r.output_tokens for r in rows) == turn["output_tokens"]
    nothing_but_the_central_key_reached_the_fake(deployment, "openai")


def test_gemini_cli(gateway_server, deployment, home):
    """gemini -p, with the API key as its auth type, a trusted work folder and the base URL
    the gateway gives Google's SDKs."""
    answer_names("google", "gemini-*")
    settings_dir = home["home"] / ".gemini"
    settings_dir.mkdir()
    (settings_dir / "settings.json").write_text(
        json.dumps(
            {
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "privacy": {"usageStatisticsEnabled": False},
                "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            }
        )
    )
    env = {
        "GEMINI_API_KEY": deployment.token.secret,
        "GOOGLE_GEMINI_BASE_URL": f"{gateway_server}/api/v2/aibridge/google",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    printed = agent(["gemini", "-p", "hello gemini", "--output-format", "json"], env, home)
    report = json.loads(printed[printed.index("{") :])
    assert report["response"] == "You said: hello gemini"
    [stats] = report["stats"]["models"].values()
    rows = wait_for_usage(stats["api"]["totalRequests"])
    assert [(r.status, r.error_kind) for r in rows] == [(200, "")] * len(rows)
    assert sum(r.input_tokens for r in rows) == stats["tokens"]["input"]
    assert sum(r.output_tokens for r in rows) == stats["tokens"]["candidates"]
    assert sum(r.cache_read_tokens for r in rows) == stats["tokens"]["cached"]
    assert any(r.streamed for r in rows)
    nothing_but_the_central_key_reached_the_fake(deployment, "google")
