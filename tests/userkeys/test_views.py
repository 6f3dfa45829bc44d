import io
import logging

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from providers.services import provider_save
from userkeys.models import UserKey

pytestmark = pytest.mark.django_db

PAGE = reverse("userkeys:list")


def save_url(provider_type="openai"):
    return reverse("userkeys:save", args=[provider_type])


def status_of(response, provider_type="openai"):
    card = next(c for c in response.context["cards"] if c.provider.type == provider_type)
    return card.status.label


def test_anonymous_users_are_sent_to_login(client, make_provider, save_user_key, developer):
    key = save_user_key(developer, make_provider("openai", user_keys_allowed=True))
    for method, url in (
        ("get", PAGE),
        ("post", save_url()),
        ("post", reverse("userkeys:remove", args=[key.pk])),
    ):
        response = getattr(client, method)(url, {"api_key": "sk-x"})
        assert response.status_code == 302 and "/login/" in response.url
    assert UserKey.objects.get().api_key.reveal() == "sk-user-own-key"


def test_empty_state_when_no_provider_allows_personal_keys(developer_client, make_provider):
    make_provider("openai")
    assert b"No providers allow personal API keys." in developer_client.get(PAGE).content


def test_each_status_of_the_seed(developer_client, developer, make_provider, save_user_key):
    make_provider("openai", api_key=None)  # user keys only
    make_provider("anthropic", user_keys_allowed=True, central_key_fallback=True)
    saved = make_provider("google", user_keys_allowed=True)
    make_provider("openrouter")  # central only: not listed
    save_user_key(developer, saved)
    response = developer_client.get(PAGE)
    content = response.content.decode()
    assert status_of(response, "openai") == "No key"
    assert "You must add a personal key before you can use this provider." in content
    assert status_of(response, "anthropic") == "Using shared key"
    assert "the central deployment key is available as a fallback" in content
    assert status_of(response, "google") == "Key saved"
    assert "Your personal key is active and will be used for requests." in content
    assert "OpenRouter" not in content
    assert "sk-user-own-key" not in content


def test_without_fallback_a_person_without_a_key_sees_no_key_not_the_shared_one(
    developer_client, make_provider
):
    """The central key is on and personal keys are allowed, but the central key is no
    fallback: it does not cover people without a key of their own."""
    make_provider("anthropic", user_keys_allowed=True, central_key_fallback=False)
    response = developer_client.get(PAGE)
    assert status_of(response, "anthropic") == "No key"
    assert "You must add a personal key" in response.content.decode()
    assert "Using shared key" not in response.content.decode()


def test_saving_a_key_updates_the_card_in_place(developer_client, developer, make_provider):
    make_provider("openai", api_key=None)
    response = developer_client.post(
        save_url(), {"api_key": "sk-mine-123"}, headers={"HX-Request": "true"}
    )
    content = response.content.decode()
    assert content.strip().startswith('<li class="card" id="key-openai">')
    assert "Key saved" in content and "sk-mine-123" not in content
    assert UserKey.objects.get(user=developer).api_key.reveal() == "sk-mine-123"
    entry = AuditEntry.objects.get(action="set_key")
    assert entry.actor == developer and "sk-mine-123" not in str(entry.__dict__)


def test_saving_again_replaces_the_key(developer_client, developer, make_provider, save_user_key):
    provider = make_provider("openai", api_key=None)
    save_user_key(developer, provider, "sk-old")
    developer_client.post(save_url(), {"api_key": "sk-new"})
    assert UserKey.objects.get().api_key.reveal() == "sk-new"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "Paste your API key."),
        (" sk-x", "starts or ends with whitespace"),
        ("k" * 10_241, "longer than 10,240 bytes"),
        ("a\tb", "control characters"),
    ],
)
def test_bad_keys_show_an_error_on_the_card(developer_client, make_provider, raw, message):
    make_provider("openai", api_key=None)
    response = developer_client.post(save_url(), {"api_key": raw}, headers={"HX-Request": "true"})
    content = response.content.decode()
    assert message in content and 'class="field-errors"' in content
    assert not UserKey.objects.exists()
    if raw.strip():
        assert raw.strip() not in content


def test_a_provider_that_does_not_take_personal_keys_is_404(developer_client, make_provider):
    make_provider("openai")
    make_provider("google", user_keys_allowed=True, enabled=False)
    assert developer_client.post(save_url("openai"), {"api_key": "sk-x"}).status_code == 404
    assert developer_client.post(save_url("google"), {"api_key": "sk-x"}).status_code == 404
    assert developer_client.post(save_url("nope"), {"api_key": "sk-x"}).status_code == 404
    assert not UserKey.objects.exists()


def test_removing_falls_back_or_makes_the_provider_unavailable(
    developer_client, developer, make_provider, save_user_key
):
    fallback = make_provider("anthropic", user_keys_allowed=True, central_key_fallback=True)
    required = make_provider("openai", api_key=None)
    page = developer_client.get(PAGE).content.decode()
    assert "Remove" not in page
    keys = [save_user_key(developer, p) for p in (fallback, required)]
    page = developer_client.get(PAGE).content.decode()
    assert "After removal, requests use the shared deployment key." in page
    assert "After removal, OpenAI is unavailable to you until you add a new personal key." in page
    first = developer_client.post(
        reverse("userkeys:remove", args=[keys[0].pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "Using shared key" in first and "Your Anthropic key is removed." in first
    second = developer_client.post(
        reverse("userkeys:remove", args=[keys[1].pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "No key" in second
    assert not UserKey.objects.exists()
    assert AuditEntry.objects.filter(action="clear_key").count() == 2


def test_nobody_can_touch_another_users_key(
    client, developer, other_developer, admin_user, make_provider, save_user_key
):
    provider = make_provider("openai", api_key=None)
    key = save_user_key(developer, provider, "sk-owner-secret")
    for intruder in (other_developer, admin_user):
        client.force_login(intruder)
        assert client.post(reverse("userkeys:remove", args=[key.pk])).status_code == 404
        page = client.get(PAGE)
        assert status_of(page) == "No key"
        assert b"sk-owner-secret" not in page.content
        # Saving writes the intruder's own key, never the owner's.
        client.post(save_url(), {"api_key": f"sk-{intruder.username}"})
    assert UserKey.objects.get(user=developer).api_key.reveal() == "sk-owner-secret"
    assert UserKey.objects.count() == 3


def test_keys_are_kept_while_hidden_and_come_back(
    developer_client, developer, make_provider, save_user_key
):
    provider = make_provider("openai", user_keys_allowed=True)
    save_user_key(developer, provider, "sk-kept")
    provider_save(provider_type="openai", actor=None, changes={"user_keys_allowed": False})
    assert b"No providers allow personal API keys." in developer_client.get(PAGE).content
    provider_save(
        provider_type="openai", actor=None, changes={"enabled": False, "user_keys_allowed": True}
    )
    assert b"No providers allow personal API keys." in developer_client.get(PAGE).content
    provider_save(provider_type="openai", actor=None, changes={"enabled": True})
    assert status_of(developer_client.get(PAGE)) == "Key saved"
    assert UserKey.objects.get().api_key.reveal() == "sk-kept"


def test_the_page_takes_a_constant_number_of_queries(
    developer_client, developer, make_provider, save_user_key, django_assert_max_num_queries
):
    from providers.registry import ProviderType

    for provider_type in ProviderType:
        save_user_key(developer, make_provider(provider_type.value, user_keys_allowed=True))
    with django_assert_max_num_queries(5):  # session, user, session token, providers, keys
        developer_client.get(PAGE)


def test_a_canary_user_key_appears_nowhere(
    client, developer, admin_user, make_provider, caplog, capsys, monkeypatch
):
    from django.core.management import call_command

    from routing.credentials import resolve_for_user

    canary = "sk-CANARY-byok-9c2f71"
    caplog.set_level(logging.DEBUG)
    provider = make_provider("openai", api_key=None)
    client.force_login(developer)
    outputs = [
        client.post(save_url(), {"api_key": f" {canary}"}).content,
        client.post(save_url(), {"api_key": canary}, follow=True).content,
        client.get(PAGE).content,
        client.get(reverse("chats:agents")).content,
        client.get(reverse("routing:available-models")).content,
    ]
    key = UserKey.objects.get()
    assert key.api_key.reveal() == canary
    credential = resolve_for_user(developer, provider)
    for obj in (key, key.api_key, credential):
        outputs += [repr(obj), str(obj), f"{obj}", "%s" % (obj,), "%r" % (obj,)]
    client.force_login(admin_user)
    outputs += [
        client.get(url).content
        for url in (
            "/django-admin/userkeys/userkey/",
            f"/django-admin/userkeys/userkey/{key.pk}/change/",
            reverse("audit:list"),
        )
    ]
    out = io.StringIO()
    call_command("user_availability", "dev", "--json", stdout=out)
    call_command("check", stdout=out, stderr=out)
    outputs += [
        out.getvalue(),
        repr(list(AuditEntry.objects.values())),
        caplog.text,
        *capsys.readouterr(),
    ]
    for output in outputs:
        text = output.decode() if isinstance(output, bytes) else output
        assert canary not in text


def test_removing_a_key_is_confirmed_in_the_card_first(
    developer_client, developer, make_provider, save_user_key
):
    provider = make_provider("openai", api_key=None)
    key = save_user_key(developer, provider)
    url = reverse("userkeys:remove", args=[key.pk])
    page = developer_client.get(PAGE).content.decode()
    assert "hx-confirm" not in page
    asked = developer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert asked.lstrip().startswith('<li class="card" id="key-openai">')
    assert "Remove your OpenAI key?" in asked and "unavailable to you" in asked
    assert UserKey.objects.filter(pk=key.pk).exists()  # asking removes nothing
    # Without JavaScript the same question is a whole page.
    assert b"Remove my OpenAI key" in developer_client.get(url).content
    developer_client.post(url)
    assert not UserKey.objects.exists()
