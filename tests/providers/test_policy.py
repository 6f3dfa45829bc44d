"""A key policy in words: one case per row of the seed's truth table, checked against the same
``decide`` that routing and the gateway use, then on the card and in the form."""

import json

import pytest
from django.urls import reverse

from providers.policy import (
    CANNOT_USE,
    USES_CENTRAL,
    USES_OWN,
    all_explanations,
    central_key_unused,
    explain_policy,
)
from routing.credentials import CredentialSource, decide

# central, user keys, fallback, developer has key -> result (the seed's table, row by row)
TRUTH_TABLE = [
    (True, False, False, False, USES_CENTRAL, "Everyone uses the shared central key"),
    (False, True, False, True, USES_OWN, "Developers must bring their own key; without one"),
    (False, True, False, False, CANNOT_USE, "Developers must bring their own key; without one"),
    (True, True, False, True, USES_OWN, "the central key is not used"),
    (True, True, False, False, CANNOT_USE, "the central key is not used"),
    (True, True, True, True, USES_OWN, "or the shared central key when they have none"),
    (True, True, True, False, USES_CENTRAL, "or the shared central key when they have none"),
]


@pytest.mark.parametrize("central, user, fallback, has_key, result, words", TRUTH_TABLE)
def test_each_truth_table_row_is_explained_as_routing_decides_it(
    central, user, fallback, has_key, result, words
):
    explanation = explain_policy(central=central, user=user, fallback=fallback)
    assert explanation.valid and words in explanation.summary
    assert explanation.outcome(has_key=has_key) == result
    decided = decide(
        enabled=True,
        central_key_enabled=central,
        user_keys_allowed=user,
        central_key_fallback=fallback,
        central_key_usable=True,
        user_key_usable=has_key,
    )
    expected = {
        USES_OWN: CredentialSource.USER,
        USES_CENTRAL: CredentialSource.CENTRAL,
    }.get(result)
    assert decided == expected if expected else not isinstance(decided, CredentialSource)


@pytest.mark.parametrize(
    "central, user, fallback", [(False, False, False), (False, False, True), (False, True, True)]
)
def test_invalid_combinations_say_the_rule(central, user, fallback):
    explanation = explain_policy(central=central, user=user, fallback=fallback)
    assert not explanation.valid and "At least one credential source" in explanation.summary


def test_a_stored_central_key_that_the_policy_never_uses_is_pointed_out():
    def unused(central, user, fallback, stored=True):
        return central_key_unused(central=central, user=user, fallback=fallback, key_stored=stored)

    assert "the central API key is off" in unused(False, True, False)
    assert "developers must use their own keys" in unused(True, True, False)
    assert unused(True, False, False) == "" and unused(True, True, True) == ""
    assert unused(False, True, False, stored=False) == ""


def test_the_live_table_covers_every_checkbox_combination():
    table = all_explanations(key_stored=True)
    assert sorted(table) == [f"{c}{u}{f}" for c in "01" for u in "01" for f in "01"]
    assert table["110"]["summary"].endswith("the central key is not used.")
    assert table["110"]["unused"] and not table["111"]["unused"]
    assert table["000"]["valid"] is False


def _card(client, provider_type):
    page = client.get(reverse("providers:list")).content.decode()
    start = page.index(f'id="provider-{provider_type}"')
    return page[start : page.index("</li>", start)]


@pytest.mark.django_db
def test_cards_say_the_policy_and_how_many_people_can_use_it(
    staff_client, admin_user, developer, other_developer, make_provider, save_user_key
):
    make_provider("anthropic")  # central only: everyone
    openai = make_provider("openai", api_key=None)  # personal keys only
    save_user_key(developer, openai)
    make_provider("google", enabled=False)
    make_provider("openrouter", user_keys_allowed=True)  # own key required, central unused

    anthropic = _card(staff_client, "anthropic")
    assert "Everyone uses the shared central key" in anthropic
    assert "3 of 3 people can use it now." in anthropic
    own = _card(staff_client, "openai")
    assert "Developers must bring their own key" in own
    assert "1 of 3 people can use it now, all with their own key." in own
    assert "Disabled: nobody can use its models" in _card(staff_client, "google")
    router = _card(staff_client, "openrouter")
    assert "0 of 3 people can use it now." in router
    assert "A central key is stored but not used" in router


@pytest.mark.django_db
def test_deactivated_people_are_not_counted(staff_client, developer, make_provider):
    make_provider("anthropic")
    developer.is_active = False
    developer.save()
    assert "1 of 1 person can use it now." in _card(staff_client, "anthropic")


@pytest.mark.django_db
def test_the_form_explains_the_policy_as_shown_and_carries_the_live_table(
    staff_client, make_provider
):
    make_provider("anthropic", user_keys_allowed=True, central_key_fallback=True)
    response = staff_client.get(
        reverse("providers:edit", args=["anthropic"]), headers={"HX-Request": "true"}
    )
    content = response.content.decode()
    assert "Developers use their own key, or the shared central key" in content
    assert 'data-policy="policy-table-anthropic"' in content
    start = content.index('id="policy-table-anthropic"')
    table = json.loads(content[content.index(">", start) + 1 : content.index("</script>", start)])
    assert set(table) >= {"100", "110", "111", "010"}
    # A refused combination is explained the same way after the round trip.
    refused = staff_client.post(
        reverse("providers:edit", args=["anthropic"]),
        {"central_key_fallback": "on", "user_keys_allowed": "", "enabled": "on"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "At least one credential source must be on" in refused


@pytest.mark.django_db
def test_the_policy_script_is_loaded_and_the_fields_have_distinct_ids(staff_client, make_provider):
    make_provider("anthropic")
    page = staff_client.get(reverse("providers:edit", args=["anthropic"])).content.decode()
    assert "js/policy.js" in page
    assert 'id="anthropic-central_key_fallback"' in page
