"""Any input to the sign-in forms: a form error, a sign-in or a lockout, never a crash."""

import pytest
from hypothesis import given

from tests.properties import property_settings, rolled_back, texts

pytestmark = pytest.mark.django_db


@property_settings
@given(username=texts, password=texts)
def test_sign_in_never_crashes(client, developer, username, password):
    with rolled_back():
        for url in ("/login/", "/django-admin/login/"):
            response = client.post(url, {"username": username, "password": password})
            assert response.status_code in (200, 302, 429), url
