import pytest

from models_catalog.models import ModelConfig

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_a_model_switching_providers_and_stars_it(
    page, admin_user, make_provider, make_model, screenshot
):
    anthropic = make_provider("anthropic")
    openai = make_provider("openai")
    make_model("gpt-4o-mini", "openai", display_name="GPT-4o mini")
    sign_in(page, "alice")
    page.goto("/admin/models/")
    page.get_by_role("link", name="Add model").click()

    page.locator("input[name=identifier]").fill("claude-opus-4-6")
    page.locator("input[name=display_name]").fill("Claude Opus")
    page.locator("input[name=context_limit]").fill("200000")
    page.select_option("select[name=provider]", str(anthropic.pk))
    page.get_by_label("Thinking budget tokens").wait_for()
    assert page.get_by_label("Effort").is_visible()
    # Anthropic reports hour-long cache writes apart: its models take a price for them.
    assert page.get_by_label("Cache write price, 1 hour").is_visible()
    # And says how fast and where a call ran: factors for fast mode and US-only inference.
    assert page.get_by_label("US-only inference price factor").is_visible()
    assert page.get_by_label("Fast mode price factor").is_visible()
    screenshot("1-anthropic-options")

    page.select_option("select[name=provider]", str(openai.pk))
    page.get_by_label("Reasoning effort").wait_for()
    assert page.get_by_label("Thinking budget tokens").count() == 0
    assert page.get_by_label("Cache write price, 1 hour").count() == 0
    assert page.get_by_label("US-only inference price factor").count() == 0
    assert page.get_by_label("Fast mode price factor").count() == 0
    # The general fields kept what was typed while the options swapped.
    assert page.locator("input[name=identifier]").input_value() == "claude-opus-4-6"
    page.select_option("select[name=option_reasoning_effort]", "high")
    # OpenAI names the service tier a call ran on: its models take a factor for each.
    page.get_by_label("Priority price factor").fill("2")
    screenshot("2-openai-options")

    page.locator("input[name=identifier]").fill("gpt-5")
    page.locator("input[name=display_name]").fill("GPT-5")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("GPT-5 saved.").wait_for()
    gpt5 = ModelConfig.objects.get(identifier="gpt-5")
    assert gpt5.options == {"reasoning_effort": "high"}
    assert gpt5.priority_price_factor == 2 and gpt5.flex_price_factor is None

    page.get_by_role("button", name="Make GPT-5 the default").click()
    page.get_by_role("button", name="GPT-5 is the default model").wait_for()
    screenshot("3-starred")
    page.get_by_role("button", name="Make GPT-4o mini the default").click()
    page.get_by_role("button", name="GPT-4o mini is the default model").wait_for()
    assert page.get_by_role("button", name="Make GPT-5 the default").is_visible()
    assert list(
        ModelConfig.objects.filter(is_default=True).values_list("identifier", flat=True)
    ) == ["gpt-4o-mini"]
    screenshot("4-star-moved")


def test_an_admin_gives_a_model_fallbacks_of_its_format_only(
    page, admin_user, make_provider, make_model, screenshot
):
    make_provider("openai")
    make_provider("aws-bedrock")
    claude = make_model("claude-opus-4-6", "anthropic", display_name="Claude Opus")
    make_model("anthropic.claude-opus-4-6-v1:0", "aws-bedrock", display_name="Opus on Bedrock")
    make_model("claude-sonnet-4-6", "anthropic", display_name="Claude Sonnet")
    make_model("gpt-5", "openai", display_name="GPT-5")
    sign_in(page, "alice")
    page.goto(f"/admin/models/{claude.pk}/")
    first = page.get_by_label("First fallback")
    offered = first.locator("option").all_inner_texts()
    assert offered[0] == "None" and len(offered) == 3  # Bedrock's and Sonnet, not GPT-5
    assert not any("GPT-5" in text or "Claude Opus (" in text for text in offered)
    first.select_option(label="Opus on Bedrock (AWS Bedrock) · anthropic.claude-opus-4-6-v1:0")
    page.get_by_label("Second fallback").select_option(
        label="Opus on Bedrock (AWS Bedrock) · anthropic.claude-opus-4-6-v1:0"
    )
    page.get_by_role("button", name="Save").click()
    page.get_by_text("already, higher up").wait_for()
    screenshot("1-the-same-fallback-twice")
    page.get_by_label("Second fallback").select_option(
        label="Claude Sonnet (Anthropic) · claude-sonnet-4-6"
    )
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Claude Opus saved.").wait_for()
    assert [m.identifier for m in ModelConfig.objects.get(pk=claude.pk).fallbacks] == [
        "anthropic.claude-opus-4-6-v1:0",
        "claude-sonnet-4-6",
    ]
    page.goto(f"/admin/models/{claude.pk}/")
    assert (
        "Opus on Bedrock"
        in page.get_by_label("First fallback").locator("option:checked").inner_text()
    )
    screenshot("2-reopened")
