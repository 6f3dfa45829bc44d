"""Finding 4 of the hardening probe, through HTTP against 4 worker processes on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from providers.models import Provider
from tests.servers import served_app, signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_finding_4_twenty_simultaneous_creations_of_one_provider_type(admin_user):
    url = reverse("providers:edit", args=["anthropic"])
    with served_app(workers=4) as base:
        for round_number in range(3):
            Provider.objects.all().delete()
            clients = [signed_in_client(base, admin_user) for _ in range(4)]
            barrier = threading.Barrier(20)

            def create(i: int, clients=clients, barrier=barrier) -> int:
                barrier.wait()
                data = {"api_key": f"sk-ant-{i}", "central_key_enabled": "on", "enabled": "on"}
                return (
                    clients[i % 4].post(url, data=data, headers={"HX-Request": "true"}).status_code
                )

            with ThreadPoolExecutor(20) as pool:
                statuses = list(pool.map(create, range(20)))
            assert statuses == [200] * 20, f"round {round_number}: {statuses}"
            assert Provider.objects.filter(type="anthropic").count() == 1


def test_admins_adding_and_removing_central_keys_at_once(admin_user, make_provider):
    """Twenty adds at once through four workers, half of them with one label: one key per
    label, never more than the most a provider may have, no 500; then removals of every
    key at once leave the provider with exactly one (its last cannot go)."""
    from providers.models import MAX_CENTRAL_KEYS, ProviderKey

    make_provider("openai")
    add = reverse("providers:key_add", args=["openai"])
    remove = reverse("providers:key_remove", args=["openai"])
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, admin_user) for _ in range(4)]
        barrier = threading.Barrier(20)

        def add_one(i: int) -> tuple[int, str]:
            label = "shared" if i % 2 else f"k{i}"
            barrier.wait()
            answer = clients[i % 4].post(
                add,
                data={"key_label": label, "api_key": f"sk-k-{i}"},
                headers={"HX-Request": "true"},
            )
            return answer.status_code, answer.text

        with ThreadPoolExecutor(20) as pool:
            added = list(pool.map(add_one, range(20)))
        assert {status for status, _ in added} == {200}
        provider = Provider.objects.prefetch_related("further_keys").get(type="openai")
        labels = [key.key_label for key in provider.central_keys()]
        assert len(labels) == len(set(labels)) == MAX_CENTRAL_KEYS
        assert labels.count("shared") == 1
        refused = [
            text
            for _, text in added
            if "already has a key labelled" in text or "the most it may have" in text
        ]
        assert len(refused) == 20 - (MAX_CENTRAL_KEYS - 1)  # each said why, by the field

        barrier = threading.Barrier(len(labels))

        def remove_one(i: int) -> int:
            barrier.wait()
            answer = clients[i % 4].post(
                remove, data={"key_label": labels[i]}, headers={"HX-Request": "true"}
            )
            return answer.status_code

        with ThreadPoolExecutor(len(labels)) as pool:
            assert set(pool.map(remove_one, range(len(labels)))) == {200}
    provider = Provider.objects.get(type="openai")
    assert provider.api_key is not None and not ProviderKey.objects.exists()
