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
