import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from audit.models import AuditEntry
from models_catalog.models import ModelConfig
from models_catalog.services import (
    model_clear_default,
    model_delete,
    model_set_default,
    model_set_enabled,
)
from providers.models import Provider
from providers.services import provider_delete


def default() -> ModelConfig | None:
    return ModelConfig.objects.filter(is_default=True).first()


@pytest.mark.django_db
def test_starring_moves_the_star_and_is_audited(make_model, admin_user):
    a, b = make_model("a-model"), make_model("b-model")
    model_set_default(model=a, actor=admin_user)
    model_set_default(model=b, actor=admin_user)
    assert default() == b
    assert ModelConfig.objects.filter(is_default=True).count() == 1
    assert AuditEntry.objects.filter(action="set_default").count() == 2
    model_clear_default(actor=admin_user)
    assert default() is None


@pytest.mark.django_db
def test_clearing_the_default_model_writes_an_audit_entry(make_model, admin_user):
    starred = make_model("a-model")
    model_set_default(model=starred, actor=admin_user)
    before = AuditEntry.objects.count()
    model_clear_default(actor=admin_user)
    [entry] = AuditEntry.objects.order_by("-id")[: AuditEntry.objects.count() - before]
    assert entry.actor == admin_user and entry.object_id == str(starred.pk)
    assert entry.changes == {"is_default": [True, False]}


@pytest.mark.django_db(transaction=True)
def test_the_database_allows_only_one_default(make_model):
    a, b = make_model("a-model"), make_model("b-model")
    ModelConfig.objects.filter(pk=a.pk).update(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelConfig.objects.filter(pk=b.pk).update(is_default=True)


@pytest.mark.django_db
def test_deleting_the_default_moves_the_star_to_the_first_remaining_model(make_model):
    a = make_model("a-model", display_name="Alpha")
    make_model("z-model", display_name="Zulu")
    b = make_model("b-model", display_name="Bravo")
    model_set_default(model=a, actor=None)
    moved = model_delete(model=a, actor=None)
    assert default() == b
    assert moved.message() == "Alpha was the default model; the default is now Bravo."


@pytest.mark.django_db
def test_deleting_the_last_model_leaves_no_default(make_model):
    a = make_model("a-model", display_name="Alpha")
    model_set_default(model=a, actor=None)
    assert model_delete(model=a, actor=None).message() == (
        "Alpha was the default model; there is no default model now."
    )
    assert default() is None


@pytest.mark.django_db
def test_disabling_the_default_moves_the_star_to_an_enabled_model(make_model):
    a = make_model("a-model", display_name="Alpha")
    make_model("b-model", display_name="Bravo", enabled=False)
    c = make_model("c-model", display_name="Charlie")
    model_set_default(model=a, actor=None)
    moved = model_set_enabled(model=a, enabled=False, actor=None)
    assert moved is not None and moved.current == c
    assert default() == c


@pytest.mark.django_db
def test_disabling_another_model_leaves_the_star_alone(make_model):
    a, b = make_model("a-model"), make_model("b-model")
    model_set_default(model=a, actor=None)
    assert model_set_enabled(model=b, enabled=False, actor=None) is None
    assert default() == a


@pytest.mark.django_db
def test_deleting_the_provider_of_the_default_moves_the_star_to_another_provider(
    make_model, admin_user
):
    a = make_model("claude", "anthropic")
    make_model("claude-2", "anthropic")
    gpt = make_model("gpt", "openai")
    model_set_default(model=a, actor=None)
    provider_delete(provider=Provider.objects.get(type="anthropic"), actor=admin_user)
    assert default() == gpt
    assert AuditEntry.objects.filter(
        action="set_default", object_repr=str(gpt), actor_label="alice"
    ).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_starring_different_models_at_once_leave_exactly_one_default(make_model):
    """Two connections star two models at the same instant, many times over."""
    models = [make_model(f"model-{i}") for i in range(4)]
    for round_ in range(10):
        pair = (models[round_ % 4], models[(round_ + 1) % 4])
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def star(
            model: ModelConfig,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                with transaction.atomic():
                    barrier.wait(timeout=10)
                    model_set_default(model=model, actor=None)
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=star, args=(m,)) for m in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        starred = list(ModelConfig.objects.filter(is_default=True))
        assert len(starred) == 1 and starred[0] in pair
    assert connection.vendor == "postgresql"
