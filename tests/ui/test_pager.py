"""The pager of the long admin lists keeps the list's filters from page to page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from audit.models import AuditAction, AuditEntry

pytestmark = pytest.mark.django_db


def test_audit_pages_keep_the_filters(staff_client):
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor_label="alice", action=AuditAction.UPDATE, object_type="x", object_repr=f"o{i}"
        )
        for i in range(120)
    )
    content = staff_client.get(reverse("audit:list"), {"action": "update", "page": "2"}).content
    page = content.decode()
    assert "Page 2 of 3" in page
    assert 'href="?action=update&amp;page=1">Newer</a>' in page
    assert 'href="?action=update&amp;page=3">Older</a>' in page


def test_people_pages_keep_the_search_and_only_what_was_sent(staff_client):
    User.objects.bulk_create(User(username=f"dev{i:03}") for i in range(120))
    page = staff_client.get(reverse("accounts:people"), {"q": "dev0"}).content.decode()
    assert "Page 1 of" in page
    assert 'href="?q=dev0&amp;page=2">Next</a>' in page
    assert "Previous</a>" not in page


def test_a_list_on_one_page_has_no_pager(staff_client):
    assert 'class="pager"' not in staff_client.get(reverse("tokens:admin-list")).content.decode()
