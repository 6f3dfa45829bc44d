import pytest
from django.urls import reverse

from audit.models import AuditEntry
from providers.models import Provider

pytestmark = pytest.mark.django_db

LIST = reverse("providers:list")


def edit_url(provider_type: str = "anthropic") -> str:
    return reverse("providers:edit", args=[provider_type])


def form_data(**overrides):
    data = {
        "api_key": "sk-ant-new-key",
        "base_url": "",
        "enabled": "on",
        "central_key_enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


VIEWS = [
    ("get", LIST),
    ("get", edit_url()),
    ("post", edit_url()),
    ("get", reverse("providers:delete", args=["anthropic"])),
    ("post", reverse("providers:delete", args=["anthropic"])),
    ("get", reverse("audit:list")),
]


@pytest.mark.parametrize("method, url", [v for v in VIEWS if v[0] == "get"])
def test_admins_can_open_every_admin_page(staff_client, make_provider, method, url):
    make_provider("anthropic")
    assert staff_client.get(url).status_code == 200


def test_the_list_shows_every_provider_type_with_its_status(staff_client, make_provider):
    make_provider("anthropic")
    make_provider("openai", enabled=False)
    response = staff_client.get(LIST)
    content = response.content.decode()
    for label in (
        "Anthropic",
        "OpenAI",
        "Google",
        "Azure OpenAI",
        "AWS Bedrock",
        "OpenAI Compatible",
        "OpenRouter",
        "Vercel AI Gateway",
    ):
        assert f'<h2 tabindex="-1">{label}</h2>' in content
    statuses = [row.status.value for row in response.context["rows"]]
    assert statuses == ["configured", "disabled"] + ["not_configured"] * 6


def test_the_list_takes_one_query_for_the_providers(
    staff_client, make_provider, django_assert_max_num_queries
):
    for provider_type in ("anthropic", "openai", "google", "openrouter"):
        make_provider(provider_type)
    # session, user, session token, providers with their further keys and breakers; people
    # and personal keys counted (reach); usable and starred models, invitations (the setup
    # checklist).
    with django_assert_max_num_queries(10):
        staff_client.get(LIST)


def test_htmx_get_returns_only_the_card_with_the_form(staff_client):
    response = staff_client.get(edit_url("openai"), headers={"HX-Request": "true"})
    content = response.content.decode()
    assert content.lstrip().startswith('<li class="card open" id="provider-openai">')
    assert "<html" not in content
    assert 'placeholder="https://api.openai.com/v1"' in content
    assert "At least one credential source must be on" in content


def test_plain_get_renders_the_whole_page_with_the_form_open(staff_client):
    response = staff_client.get(edit_url("google"))
    assert b"<html" in response.content
    assert b'action="/admin/providers/google/"' in response.content


def test_unknown_provider_types_are_404(staff_client):
    assert staff_client.get(edit_url("nope")).status_code == 404
    assert staff_client.post(reverse("providers:delete", args=["nope"])).status_code == 404


def test_configuring_a_provider_saves_it_and_audits_field_names(staff_client, admin_user):
    response = staff_client.post(
        edit_url(), form_data(base_url="https://proxy.example.com"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b"Anthropic saved." in response.content
    provider = Provider.objects.get()
    assert provider.api_key.reveal() == "sk-ant-new-key"
    assert provider.base_url == "https://proxy.example.com"
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.object_repr) == (admin_user, "create", "Anthropic")
    assert "api_key" in entry.changed_fields and "base_url" in entry.changed_fields


def test_without_htmx_a_save_redirects_with_a_message(staff_client):
    response = staff_client.post(edit_url(), form_data(), follow=True)
    assert response.redirect_chain[-1][0] == LIST
    assert b"Anthropic saved." in response.content


def test_a_blank_key_on_edit_keeps_the_stored_key(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    staff_client.post(edit_url(), form_data(api_key="", base_url="https://eu.example.com"))
    provider = Provider.objects.get()
    assert provider.api_key.reveal() == "sk-original"
    assert provider.base_url == "https://eu.example.com"


def test_the_key_can_be_replaced(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    staff_client.post(edit_url(), form_data(api_key="sk-replacement"))
    assert Provider.objects.get().api_key.reveal() == "sk-replacement"


def test_clearing_the_key_is_refused_while_the_central_key_is_on(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    response = staff_client.post(edit_url(), form_data(api_key="", clear_api_key="on"))
    assert response.status_code == 422
    assert (
        "central API key is on, so a key is required"
        in response.context["rows"].__iter__().__next__().form.errors["api_key"][0]
    )
    assert Provider.objects.get().api_key.reveal() == "sk-original"


def test_clearing_the_key_works_once_only_user_keys_are_used(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    staff_client.post(
        edit_url(),
        form_data(api_key="", clear_api_key="on", central_key_enabled=None, user_keys_allowed="on"),
    )
    provider = Provider.objects.get()
    assert provider.api_key is None
    assert (provider.central_key_enabled, provider.user_keys_allowed) == (False, True)


def errors_of(response, provider_type="anthropic"):
    row = next(r for r in response.context["rows"] if r.type == provider_type)
    return row.form.errors


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        (
            {"central_key_enabled": None},
            "central_key_enabled",
            "At least one credential source must be on",
        ),
        (
            {"central_key_fallback": "on"},
            "central_key_fallback",
            "the fallback needs both the central key and user keys",
        ),
        ({"api_key": ""}, "api_key", "central API key is on, so a key is required"),
        ({"api_key": " sk-x "}, "api_key", "starts or ends with whitespace"),
        ({"api_key": "k" * 10_241}, "api_key", "longer than 10,240 bytes"),
        ({"base_url": "ftp://x"}, "base_url", "must start with http:// or https://"),
        ({"base_url": "https://u:p@x.com"}, "base_url", "Credentials are not allowed"),
        ({"base_url": "http://169.254.169.254"}, "base_url", "cloud metadata"),
        ({"base_url": "x" * 3000}, "base_url", "at most 2048 characters"),
    ],
)
def test_bad_input_shows_the_error_next_to_the_field_and_keeps_what_was_typed(
    staff_client, overrides, field, message
):
    response = staff_client.post(edit_url(), form_data(**overrides))
    assert response.status_code == 422
    assert any(message in error for error in errors_of(response)[field])
    content = response.content.decode()
    assert message.replace("'", "&#x27;") in content or message in content
    if "base_url" in overrides and len(overrides["base_url"]) < 100:
        assert f'value="{overrides["base_url"]}"' in content
    typed = form_data(**overrides).get("api_key", "").strip()
    if typed:  # what was posted in the key field is never sent back
        assert typed not in content
    assert not Provider.objects.exists()


def test_a_new_key_and_clear_together_are_refused(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    response = staff_client.post(edit_url(), form_data(api_key="sk-new", clear_api_key="on"))
    assert response.status_code == 422
    assert "Either enter a new key or clear it" in errors_of(response)["clear_api_key"][0]
    assert b"Either enter a new key or clear it" in response.content
    assert Provider.objects.get().api_key.reveal() == "sk-original"


def test_types_without_a_default_endpoint_ask_for_a_base_url(staff_client):
    response = staff_client.post(edit_url("azure-openai"), form_data())
    assert "has no default endpoint" in errors_of(response, "azure-openai")["base_url"][0]
    assert b"https://RESOURCE.openai.azure.com/openai/v1" in response.content


def test_unconfigured_cards_say_where_each_type_calls(staff_client):
    content = staff_client.get(LIST).content.decode()
    assert "https://api.anthropic.com" in content
    assert (
        "https://bedrock-runtime.&lt;region&gt;.amazonaws.com (in the region you choose)" in content
    )
    assert "{region}" not in content
    assert "base URL required" in content  # Azure OpenAI, OpenAI Compatible


def test_a_provider_whose_key_cannot_be_decrypted_shows_needs_reentry(staff_client, make_provider):
    from cryptography.fernet import Fernet
    from django.test import override_settings

    with override_settings(ENCRYPTION_KEYS=f"gone:{Fernet.generate_key().decode()}"):
        make_provider("openai")
    make_provider("anthropic")
    response = staff_client.get(LIST)
    assert response.status_code == 200
    assert b"Needs re-entry" in response.content
    form = staff_client.get(edit_url("openai"))
    assert b"cannot be decrypted with the current encryption keys" in form.content
    staff_client.post(edit_url("openai"), form_data(api_key="sk-reentered"))
    assert Provider.objects.get(type="openai").api_key.reveal() == "sk-reentered"


def test_delete_asks_for_confirmation_saying_what_goes_with_it(staff_client, make_provider):
    make_provider("anthropic")
    response = staff_client.get(
        reverse("providers:delete", args=["anthropic"]), headers={"HX-Request": "true"}
    )
    assert b"Delete Anthropic?" in response.content
    assert b"stored API key is destroyed" in response.content
    assert Provider.objects.exists()


def test_delete_removes_the_provider_and_audits_it(staff_client, make_provider):
    make_provider("anthropic")
    response = staff_client.post(
        reverse("providers:delete", args=["anthropic"]), headers={"HX-Request": "true"}
    )
    assert b"Not configured" in response.content
    assert not Provider.objects.exists()
    assert AuditEntry.objects.filter(action="delete", object_repr="Anthropic").exists()


def test_deleting_an_unconfigured_provider_is_404(staff_client):
    assert staff_client.post(reverse("providers:delete", args=["openai"])).status_code == 404


def test_a_rejected_edit_does_not_show_on_the_card_as_saved(staff_client, make_provider):
    make_provider("anthropic", api_key="sk-original")
    response = staff_client.post(
        edit_url(), form_data(api_key="", clear_api_key="on", base_url="ftp://bad")
    )
    assert response.status_code == 422
    row = next(r for r in response.context["rows"] if r.type == "anthropic")
    assert row.provider.key_state == "set"
    assert row.provider.base_url == ""
    assert b'data-testid="key-state">set<' in response.content
