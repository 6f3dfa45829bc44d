"""View as a user on the Models tab: the selector one person gets, and why."""

import pytest
from django.urls import reverse

from routing.availability import availability_for

pytestmark = pytest.mark.django_db

LIST = reverse("models:list")


def _view_as(client, who, **headers):
    response = client.get(LIST, {"as_user": who}, headers=headers)
    assert response.status_code == 200
    return response


def test_it_shows_the_users_selector_and_why_each_provider_is_in_or_out(
    staff_client, developer, make_provider, make_model, save_user_key
):
    make_model("claude-opus-4-6", "anthropic", display_name="Claude Opus")
    make_model("gpt-5", "openai", display_name="GPT-5")
    make_provider("google", api_key=None)  # personal keys only; dev has none
    make_model("gemini-2.5-pro", "google", display_name="Gemini Pro")
    openai = make_provider("openrouter", api_key=None)
    save_user_key(developer, openai)  # a key, but no models there
    seen = _view_as(staff_client, "dev").context["view_as"]
    assert seen.user == developer
    expected = availability_for(developer)
    assert [m.pk for m in seen.availability.models] == [m.pk for m in expected.models]
    verdicts = {v.label: (v.usable, v.why) for v in seen.verdicts}
    assert verdicts["Anthropic"] == (True, "Uses the shared central key.")
    assert verdicts["Google"][0] is False and "Needs dev's own key" in verdicts["Google"][1]
    assert verdicts["OpenRouter"] == (
        False,
        "Would use dev's own key, but it has no enabled models.",
    )
    page = _view_as(staff_client, "dev").content.decode()
    assert "dev's model selector" in page and "Claude Opus (preselected)" in page


def test_it_finds_people_by_email_in_any_case(staff_client, developer, make_model):
    developer.email = "Dev@Example.com"
    developer.save()
    make_model()
    assert _view_as(staff_client, "dev@example.COM").context["view_as"].user == developer


def test_an_unknown_or_deactivated_person_is_said_in_words(staff_client, developer, make_model):
    make_model()
    unknown = _view_as(staff_client, "nobody-here").content.decode()
    assert "Nobody is called “nobody-here”" in unknown and 'aria-invalid="true"' in unknown
    developer.is_active = False
    developer.save()
    assert "dev is deactivated" in _view_as(staff_client, "dev").content.decode()


def test_an_empty_selector_says_what_the_user_would_read(
    staff_client, developer, make_provider, make_model
):
    make_provider("openai", api_key=None)
    make_model("gpt-5", "openai")
    page = _view_as(staff_client, "dev").content.decode()
    assert "Empty: Add your personal API key for OpenAI" in page


def test_in_page_actions_keep_the_view_as_user(staff_client, developer, make_model):
    model = make_model()
    page = _view_as(staff_client, "dev").content.decode()
    assert f'hx-post="{reverse("models:star", args=[model.pk])}?as_user=dev"' in page
    after = staff_client.post(
        reverse("models:star", args=[model.pk]) + "?as_user=dev", headers={"HX-Request": "true"}
    ).content.decode()
    assert "dev's model selector" in after


def test_typed_text_is_never_a_500(staff_client, make_model):
    make_model()
    for text in ("'; drop table users; --", "x" * 5000, "<script>", "\u202e", " "):
        assert staff_client.get(LIST, {"as_user": text}).status_code == 200


def test_a_persons_page_links_to_their_view(staff_client, developer):
    page = staff_client.get(reverse("accounts:person", args=[developer.pk])).content.decode()
    assert f'href="{reverse("models:list")}?as_user=dev#view-as"' in page
