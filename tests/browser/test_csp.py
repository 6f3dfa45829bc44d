import pytest

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_under_the_content_security_policy(page, admin_user, make_model):
    """The ``page`` fixture fails the test on any CSP refusal or script error."""
    model = make_model()
    sign_in(page, "alice")
    for url in (
        "/agents/",
        "/settings/api-keys/",
        "/settings/tokens/",
        "/admin/providers/",
        "/admin/models/",
        f"/admin/models/{model.pk}/",
        "/admin/tokens/",
        "/admin/audit/",
        "/django-admin/",
        f"/django-admin/providers/provider/{model.provider.pk}/change/",
        f"/django-admin/models_catalog/modelconfig/{model.pk}/change/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"]
    page.goto("/admin/providers/")
    page.locator("#provider-anthropic").get_by_role("link", name="Edit").click()
    page.locator("#provider-anthropic form").wait_for()
