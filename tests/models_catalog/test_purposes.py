import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from models_catalog.models import Purpose, PurposeModel
from models_catalog.services import purpose_model_set

pytestmark = pytest.mark.django_db

URL = reverse("models:purposes")


def test_the_models_tab_sets_a_model_per_purpose_and_audits_it(staff_client, make_model):
    haiku = make_model("claude-haiku-4-5")
    page = staff_client.get(reverse("models:list"))
    assert b"Models for background tasks" in page.content
    response = staff_client.post(URL, {"title": haiku.pk, "advisor": "", "subagent": ""})
    assert response.status_code == 302
    assert PurposeModel.objects.as_map() == {"title": haiku}
    entry = AuditEntry.objects.filter(object_type="models_catalog.purposemodel").get()
    assert "title generation" in entry.object_repr.lower()
    staff_client.post(URL, {"title": ""})
    assert PurposeModel.objects.count() == 0


def test_bad_or_stale_choices_are_messages_not_errors(staff_client, make_model):
    make_model("claude-haiku-4-5")
    for value in ("999999", "abc", "²", "9" * 5000, "1\x00"):
        response = staff_client.post(URL, {"title": value}, follow=True)
        assert response.status_code == 200
        assert b"is gone" in response.content
    assert PurposeModel.objects.count() == 0


def test_a_disabled_model_cannot_be_chosen(make_model):
    model = make_model("m", enabled=False)
    with pytest.raises(ValidationError, match="disabled"):
        purpose_model_set(purpose=Purpose.ADVISOR, model=model, actor=None)
    with pytest.raises(ValidationError, match="no model setting"):
        purpose_model_set(purpose=Purpose.CHAT, model=None, actor=None)


def test_developers_cannot_set_purposes(developer_client, make_model):
    model = make_model("m")
    assert developer_client.post(URL, {"title": model.pk}).status_code == 403
    assert not PurposeModel.objects.exists()


def test_deleting_the_model_returns_the_purpose_to_automatic(make_model):
    model = make_model("m")
    purpose_model_set(purpose=Purpose.SUBAGENT, model=model, actor=None)
    model.delete()
    assert not PurposeModel.objects.exists()
