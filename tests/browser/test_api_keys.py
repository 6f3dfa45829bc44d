import pytest

from userkeys.models import UserKey

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_byok_from_the_admins_policy_to_the_developers_card(
    browser, live_server, page, admin_user, developer, make_provider, make_model, screenshot
):
    # A closed local port: the key test that follows a save must not reach the internet.
    make_provider("openai", api_key="sk-central-shared", base_url="http://127.0.0.1:9/v1")
    make_model("gpt-4o", "openai", display_name="GPT-4o")

    # The admin allows user keys on OpenAI, without fallback.
    sign_in(page, "alice")
    page.goto("/admin/providers/")
    card = page.locator("#provider-openai")
    card.get_by_role("link", name="Edit").click()
    card.get_by_label("Allow user API keys").check()
    card.get_by_role("button", name="Save").click()
    card.get_by_text("OpenAI saved.").wait_for()

    # The developer sees "No key", and the model selector says why.
    context = browser.new_context(base_url=live_server.url)
    dev = context.new_page()
    sign_in(dev, "dev")
    assert "Add your personal API key for OpenAI" in dev.get_by_test_id("no-models").inner_text()
    dev.goto("/settings/api-keys/")
    dev_card = dev.locator("#key-openai")
    assert dev_card.get_by_test_id("status").inner_text() == "No key"
    screenshot("1-no-key", of=dev)

    dev_card.get_by_label("Your API key").fill("sk-dev-own-key")
    dev_card.get_by_role("button", name="Save").click()
    dev_card.get_by_text("Your OpenAI key is saved.").wait_for()
    assert dev_card.get_by_test_id("status").inner_text() == "Key saved"
    assert "sk-dev-own-key" not in dev.content()
    screenshot("2-key-saved", of=dev)
    dev.goto("/agents/")
    assert dev.locator("#model-selector option").all_inner_texts() == ["GPT-4o · 200K context"]

    # The admin turns the fallback on.
    card.get_by_role("link", name="Edit").click()
    card.get_by_label("Central key as fallback").check()
    card.get_by_role("button", name="Save").click()
    card.get_by_text("OpenAI saved.").wait_for()

    # The developer removes the key and now uses the shared one.
    dev.goto("/settings/api-keys/")
    assert "requests use the shared deployment key" in dev_card.inner_text()
    dev_card.get_by_role("link", name="Remove").click()
    dev_card.get_by_text("Remove your OpenAI key?").wait_for()
    dev_card.get_by_role("button", name="Remove my OpenAI key").click()
    dev_card.get_by_text("Your OpenAI key is removed.").wait_for()
    assert dev_card.get_by_test_id("status").inner_text() == "Using shared key"
    screenshot("3-using-shared-key", of=dev)
    assert not UserKey.objects.exists()
    context.close()


def test_the_selector_remembers_the_last_used_model(page, developer, make_model, screenshot):
    make_model("claude", "anthropic", display_name="Claude")
    make_model("gpt", "openai", display_name="GPT")
    sign_in(page, "dev")
    page.goto("/agents/")
    selector = page.locator("#model-selector")
    assert selector.locator("option:checked").inner_text() == "Claude · 200K context"
    selector.select_option(label="GPT · 200K context")
    page.reload()
    assert page.locator("#model-selector option:checked").inner_text() == "GPT · 200K context"
    assert page.locator("optgroup").count() == 2
    screenshot("selector")


def test_pre_selection_is_last_used_then_default_then_first_per_user(
    page, developer, other_developer, make_model, screenshot
):
    from models_catalog.models import ModelConfig
    from models_catalog.services import model_set_default

    alpha = make_model("alpha", "anthropic", display_name="Alpha")
    bravo = make_model("bravo", "openai", display_name="Bravo")
    charlie = make_model("charlie", "openai", display_name="Charlie")
    selector = page.locator("#model-selector")

    sign_in(page, "dev")
    page.goto("/agents/")
    assert selector.input_value() == str(alpha.pk)  # no history, no default: the first
    model_set_default(model=bravo, actor=None)
    page.reload()
    assert selector.input_value() == str(bravo.pk)  # the admin default
    selector.select_option(str(charlie.pk))
    page.reload()
    assert selector.input_value() == str(charlie.pk)  # last used, in this browser

    # Another user in the same browser does not inherit dev's choice.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "stranger")
    page.goto("/agents/")
    assert selector.input_value() == str(bravo.pk)
    page.get_by_role("button", name="Sign out").click()

    # A last used model that is no longer usable is ignored.
    ModelConfig.objects.filter(pk=charlie.pk).update(enabled=False)
    sign_in(page, "dev")
    page.goto("/agents/")
    assert selector.input_value() == str(bravo.pk)
    screenshot("fallback-to-default")


def test_a_saved_key_is_tested_at_once_and_a_rejected_one_says_so(
    page, developer, make_provider, screenshot
):
    from fakeprovider.server import running_fake_provider

    with running_fake_provider() as (_, url):
        make_provider(
            "openai",
            api_key=None,
            base_url=url + "/v1",
            central_key_enabled=False,
            user_keys_allowed=True,
        )
        sign_in(page, "dev")
        page.goto("/settings/api-keys/")
        card = page.locator("#key-openai")
        card.get_by_label("Your API key").fill("sk-invalid-dev-key")
        card.get_by_role("button", name="Save").click()
        saved = card.get_by_test_id("saved-and-tested")
        saved.wait_for()
        assert saved.inner_text() == "Your OpenAI key is saved · key rejected by OpenAI (401)."
        assert "Your key stays saved" in card.get_by_test_id("test-result").inner_text()
        assert card.get_by_test_id("status").inner_text() == "Key saved"
        screenshot("1-saved-but-rejected")
        card.get_by_label("Replace your key").fill("sk-dev-good-key")
        card.get_by_role("button", name="Save").click()
        card.get_by_text("Your OpenAI key is saved · it works.").wait_for()
        assert card.get_by_test_id("test-result").count() == 0
        screenshot("2-saved-and-works")
    assert UserKey.objects.get().api_key.reveal() == "sk-dev-good-key"
