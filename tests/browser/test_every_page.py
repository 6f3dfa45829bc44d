"""Every page, at desktop and phone width: screenshots, axe-core, and no sideways scrolling.

The pages are built from real objects (long names and Bedrock ARNs included, to catch
overflow); a guard test keeps the list in step with the URL configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import group_create, invitation_create
from chats.services import chat_start
from fakeprovider.server import running_fake_provider
from gateway.models import UsageRecord
from models_catalog.services import alias_set, model_save, model_set_default
from providers.services import provider_save
from spend.models import BudgetCounter
from spend.services import budget_set, limit_set
from tests.urlconf import every_view
from tokens.services import token_create
from userkeys.services import user_key_save

from .accessibility import blocking_violations, horizontal_overflow, what_overflows
from .conftest import OUTPUT, sign_in, watch_console

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# URL names that are not pages a person opens: form posts, streams, APIs and redirects.
NOT_PAGES = {
    "home": "redirects to the Agents page",
    "admin-dialog": "redirects to the Providers tab",
    "logout": "a form post",
    "healthz": "plain text for load balancers",
    "usage:metrics": "plain text for Prometheus",
    "oidc_authentication_init": "redirects to the identity provider",
    "oidc_authentication_callback": "redirects back from the identity provider",
    "routing:available-models": "JSON",
    "chats:events": "a server-sent event stream",
    **{
        name: "a form post"
        for name in (
            "accounts:invite",
            "accounts:invitation-revoke",
            "accounts:person-role",
            "accounts:person-deactivate",
            "accounts:person-reactivate",
            "accounts:person-groups",
            "accounts:group-create",
            "accounts:group-members",
            "accounts:group-delete",
            "providers:test",
            "providers:key_remove",
            "providers:key_fixed",
            "providers:breaker_retry",
            "models:purposes",
            "models:discover-add",
            "models:star",
            "models:toggle",
            "models:alias-add",
            "models:alias-remove",
            "budgets:add",
            "budgets:remove",
            "budgets:limit_add",
            "budgets:limit_remove",
            "userkeys:test",
            "userkeys:save",
            "tokens:new",
            "tokens:sign-out-others",
            "tokens:admin-revoke",
            "chats:new",
            "chats:send",
            "chats:edit-message",
            "chats:remove-message",
            "chats:stop",
            "chats:subagent",
        )
    },
}

LONG_NAME = "Claude Sonnet via the shared research account (us-east-1, provisioned throughput)"
ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/"
    "anthropic.claude-sonnet-4-5-20250929-v1:0/a1b2c3d4e5f6a7b8c9d0"
)


@dataclass(frozen=True)
class Page:
    name: str  # the URL name, or a label for a page without one
    url: str
    who: str  # "admin", "developer" or "anonymous"


def pages_of(world: dict[str, Any]) -> list[Page]:
    admin, developer, anonymous = "admin", "developer", "anonymous"
    return [
        Page("login", reverse("login"), anonymous),
        Page("accounts:accept", reverse("accounts:accept", args=[world["invitation"]]), anonymous),
        Page("not found", "/no/such/page/", developer),
        Page("chats:agents", reverse("chats:agents"), developer),
        Page("chats:detail", reverse("chats:detail", args=[world["chat"]]), developer),
        Page("userkeys:list", reverse("userkeys:list"), developer),
        Page("userkeys:remove", reverse("userkeys:remove", args=[world["user_key"]]), developer),
        Page("tokens:list", reverse("tokens:list"), developer),
        Page("usage:mine", reverse("usage:mine"), developer),
        Page("tokens:revoke", reverse("tokens:revoke", args=[world["token"]]), developer),
        Page("providers:list", reverse("providers:list"), admin),
        Page("providers:edit", reverse("providers:edit", args=["aws-bedrock"]), admin),
        Page("providers:delete", reverse("providers:delete", args=["aws-bedrock"]), admin),
        Page("providers:key_add", reverse("providers:key_add", args=["aws-bedrock"]), admin),
        Page("models:list", reverse("models:list"), admin),
        Page("models:list view-as", reverse("models:list") + "?as_user=dev#view-as", admin),
        Page("models:add", reverse("models:add"), admin),
        Page("models:edit", reverse("models:edit", args=[world["arn_model"]]), admin),
        Page("models:delete", reverse("models:delete", args=[world["arn_model"]]), admin),
        Page("models:discover", reverse("models:discover", args=["openai-compatible"]), admin),
        Page("audit:list", reverse("audit:list"), admin),
        Page("usage:list", reverse("usage:list"), admin),
        Page("budgets:list", reverse("budgets:list"), admin),
        Page("budgets:edit", reverse("budgets:edit", args=[world["budget"]]), admin),
        Page("budgets:limit_edit", reverse("budgets:limit_edit", args=[world["limit"]]), admin),
        Page("tokens:admin-list", reverse("tokens:admin-list"), admin),
        Page("accounts:people", reverse("accounts:people"), admin),
        Page("accounts:person", reverse("accounts:person", args=[world["developer"]]), admin),
        Page(
            "accounts:person-delete",
            reverse("accounts:person-delete", args=[world["developer"]]),
            admin,
        ),
        Page("accounts:group", reverse("accounts:group", args=[world["group"]]), admin),
    ]


def test_the_page_list_covers_every_view():
    """A new view is either in the sweep below or named here as not being a page."""
    named = {"login", "accounts:accept", "chats:agents", "chats:detail", "userkeys:list"}
    named |= {"userkeys:remove", "tokens:list", "usage:mine", "tokens:revoke", "providers:list"}
    named |= {"providers:edit", "providers:delete", "models:list", "models:add", "models:edit"}
    named |= {"providers:key_add"}
    named |= {"models:delete", "models:discover", "audit:list", "usage:list", "tokens:admin-list"}
    named |= {"accounts:people", "accounts:person", "accounts:person-delete", "accounts:group"}
    named |= {"budgets:list", "budgets:edit", "budgets:limit_edit"}
    views = {view.name for view in every_view()}
    assert views - named - set(NOT_PAGES) == set(), "add the new page to pages_of()"
    assert named - views == set() and set(NOT_PAGES) - views == set(), "a view is gone"


@pytest.fixture
def fake() -> Iterator[str]:
    with running_fake_provider() as (_, url):
        yield url


@pytest.fixture
def world(fake: str, admin_user: Any, developer: Any) -> dict[str, Any]:
    """A configured deployment with long names everywhere, to catch overflow."""
    compatible = provider_save(
        provider_type="openai-compatible",
        actor=admin_user,
        changes={"base_url": fake + "/v1", "user_keys_allowed": True, "central_key_fallback": True},
        api_key="sk-fake-central",
    )
    bedrock = provider_save(
        provider_type="aws-bedrock",
        actor=admin_user,
        changes={"region": "us-east-1", "user_keys_allowed": True, "central_key_enabled": False},
        api_key="ABSKbedrock-central",
    )
    provider_save(provider_type="anthropic", actor=admin_user, changes={}, api_key="sk-ant-x")
    fields = {"context_limit": 128_000, "input_price": "3", "output_price": "15"}
    chat_model, _ = model_save(
        model=None,
        provider=compatible,
        options={},
        actor=admin_user,
        fields={"identifier": "fake-gpt", "display_name": "Fake GPT", **fields},
    )
    model_set_default(model=chat_model, actor=admin_user)
    arn_model, _ = model_save(
        model=None,
        provider=bedrock,
        options={},
        actor=admin_user,
        fields={"identifier": ARN, "display_name": LONG_NAME, **fields},
    )
    alias_set(
        provider=bedrock,
        pattern="anthropic.claude-sonnet-4-5-20250929-v1:0-with-a-long-name-*",
        model=arn_model,
        actor=admin_user,
    )
    user_key = user_key_save(
        user=developer, provider=bedrock, raw_key="ABSKdeveloper-own", actor=developer
    )
    token = token_create(user=developer, name="laptop: claude code, long-lived", actor=developer)
    group = group_create(
        name="Platform engineering, research and developer experience", actor=admin_user
    )
    invitation = invitation_create(email="new.developer@example.com", actor=admin_user)
    chat, _ = chat_start(
        user=developer, model=chat_model, text="Say hello in five words.", api_key=None
    )
    for index, (identifier, cost) in enumerate([(ARN, Decimal("0.0042")), ("fake-gpt", None)]):
        UsageRecord.objects.create(
            created_at=timezone.now(),
            user=developer,
            username=developer.username,
            provider_type="aws-bedrock" if index == 0 else "openai-compatible",
            model_identifier=identifier,
            endpoint="messages",
            route="external",
            status=200 if index == 0 else 502,
            error_kind="" if index == 0 else "upstream_unreachable",
            latency_ms=1234.5,
            input_tokens=123_456,
            output_tokens=7_890,
            cost_usd=cost,
            # The longest "priced as" beside a cost, at phone width too.
            price_variants="fast,us_inference" if index == 0 else "",
        )
    # Budgets near and over their limits: the bars, the notices, the longest names.
    group.user_set.add(developer)
    over = budget_set(
        scope="group",
        group=group,
        period="month",
        limit_usd=Decimal("1250000"),
        hard=True,
        actor=admin_user,
    )
    near = budget_set(
        scope="person",
        user=developer,
        period="day",
        limit_usd=Decimal("20"),
        hard=False,
        actor=admin_user,
    )
    budget_set(scope="everyone", period="week", limit_usd=Decimal("5000"), hard=True, actor=None)
    for budget, spent, held in ((over, 1_250_000, 0), (near, 16, 1)):
        BudgetCounter.objects.create(
            budget=budget,
            period_start=budget.period_start(timezone.now()),
            spent_nano=spent * 1_000_000_000,
            reserved_nano=held * 1_000_000_000,
            unknown_nano=3 * 1_000_000_000 if held else 0,
        )
    # A long group name on a rate limit, used at 90% this minute.
    limit = limit_set(
        scope="group", group=over.group, unit="tokens", limit=1_000_000_000, actor=None
    )
    BudgetCounter.objects.create(
        budget=limit, period_start=limit.period_start(timezone.now()), spent_nano=900_000_000
    )
    return {
        "limit": limit.pk,
        "budget": over.pk,
        "chat": chat.pk,
        "arn_model": arn_model.pk,
        "user_key": user_key.pk,
        "token": token.token.pk,
        "group": group.pk,
        "invitation": invitation.token,
        "developer": developer.pk,
    }


@pytest.fixture
def signed_in(browser: Any, asgi_server: str) -> Iterator[Any]:
    """``open(who, width)`` gives a page signed in as that person, at that width."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_as(who: str, width: int) -> Any:
        context = browser.new_context(
            base_url=asgi_server, viewport={"width": width, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        watch_console(page, problems)
        if who != "anonymous":
            sign_in(page, {"admin": "alice", "developer": "dev"}[who])
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_accessible_and_fits_the_screen(world, signed_in, width):
    pages = {who: signed_in(who, width) for who in ("admin", "developer", "anonymous")}
    folder = OUTPUT / f"every-page-{width}"
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for target in pages_of(world):
        page = pages[target.who]
        response = page.goto(target.url)
        assert response is not None
        expected = 404 if target.name == "not found" else 200
        if response.status != expected:
            problems.append(f"{target.name}: HTTP {response.status}")
            continue
        page.wait_for_load_state("networkidle")
        slug = target.name.replace(":", "-").replace(" ", "-")
        page.screenshot(path=str(folder / f"{slug}.png"), full_page=True)
        for violation in blocking_violations(page):
            problems.append(f"{target.name}: axe {violation}")
        if (overflow := horizontal_overflow(page)) > 0:
            culprits = ", ".join(what_overflows(page))
            problems.append(f"{target.name}: scrolls {overflow}px sideways ({culprits})")
    assert not problems, "\n".join(problems)
