import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Person, running_provider

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_invites_a_developer_who_joins_and_is_put_in_a_group(
    browser, live_server, page, admin_user, screenshot
):
    sign_in(page, "alice")
    page.goto("/admin/people/")
    page.get_by_label("E-mail address").fill("newdev@example.com")
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_test_id("invite-link").input_value()
    assert "/invite/" in link
    screenshot("1-invitation")

    newcomer = browser.new_context(base_url=live_server.url).new_page()
    newcomer.goto(link)
    assert newcomer.get_by_label("Username").input_value() == "newdev"
    newcomer.get_by_label("Password", exact=True).fill("a-long-new-password-42")
    newcomer.get_by_label("Password again").fill("a-long-new-password-42")
    newcomer.get_by_role("button", name="Create account and sign in").click()
    newcomer.wait_for_url("**/agents/")
    screenshot("2-joined", of=newcomer)

    page.goto("/admin/people/")
    page.get_by_label("Group name").fill("platform")
    page.get_by_role("button", name="Create group").click()
    page.get_by_label("Add a member").select_option(label="newdev")
    page.get_by_role("button", name="Add to platform").click()
    page.get_by_text("newdev joined platform.").wait_for()
    assert [u.username for u in Group.objects.get(name="platform").user_set.all()] == ["newdev"]
    page.goto("/admin/people/")
    row = page.locator("table.people tr", has_text="newdev")
    assert "platform" in row.inner_text() and "Developer" in row.inner_text()
    screenshot("3-grouped")


def test_single_sign_on_through_the_local_provider_creates_the_user_with_its_group(
    browser, screenshot
):
    from tests.servers import served_app

    people = {
        "grace": Person("sub-grace", "grace@example.com", name="Grace Hopper", groups=["compilers"])
    }
    with (
        running_provider(people) as idp,
        served_app(
            workers=1,
            OIDC_ISSUER=idp.issuer,
            OIDC_CLIENT_ID=CLIENT_ID,
            OIDC_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_PROVIDER_NAME="Test IdP",
            OIDC_GROUPS_CLAIM="groups",
        ) as base,
    ):
        context = browser.new_context(base_url=base)
        page = context.new_page()
        page.goto("/login/")
        screenshot("1-sign-in", of=page)
        page.get_by_role("link", name="Sign in with Test IdP").click()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/agents/")
        screenshot("2-signed-in", of=page)
        assert "grace" in page.locator(".user").inner_text()
        context.close()
    grace = get_user_model().objects.get(email="grace@example.com")
    assert grace.first_name == "Grace" and [g.name for g in grace.groups.all()] == ["compilers"]
