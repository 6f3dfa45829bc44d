"""Finding 4 of the hardening probe, through HTTP against 4 worker processes on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from tests.servers import served_app, signed_in_client
from userkeys.models import UserKey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_finding_4_fifty_simultaneous_first_saves_of_one_key_give_no_error(
    make_provider, developer
):
    make_provider("openai", user_keys_allowed=True)
    url = reverse("userkeys:save", args=["openai"])
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, developer) for _ in range(10)]
        barrier = threading.Barrier(50)

        def save(i: int) -> int:
            barrier.wait()
            response = clients[i % 10].post(
                url, data={"api_key": f"sk-race-{i}"}, headers={"HX-Request": "true"}
            )
            return response.status_code

        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(save, range(50)))
    assert statuses == [200] * 50
    key = UserKey.objects.get()
    assert key.api_key.reveal().startswith("sk-race-")
