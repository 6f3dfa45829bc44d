"""Finding 4 of the hardening probe: stars and disables at once, through HTTP, 4 workers."""

import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from fakeprovider.server import running_fake_provider
from models_catalog.models import ModelConfig
from providers.services import provider_save
from tests.servers import served_app, signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def the_default_is_usable_or_absent() -> bool:
    defaults = list(ModelConfig.objects.select_related("provider").filter(is_default=True))
    return len(defaults) <= 1 and all(m.enabled and m.provider.enabled for m in defaults)


def test_finding_4_ten_stars_and_ten_disables_at_once_for_six_rounds(admin_user, make_model):
    models = [make_model(f"model-{i}") for i in range(10)]
    rng = random.Random(7)
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, admin_user) for _ in range(4)]
        for round_number in range(6):  # 120 requests, 20 at once, 4 workers (CI time)
            ModelConfig.objects.update(enabled=True)
            starred = [rng.choice(models) for _ in range(10)]
            disabled = [rng.choice(models) for _ in range(10)]
            jobs = [("star", m) for m in starred] + [("disable", m) for m in disabled]
            rng.shuffle(jobs)
            barrier = threading.Barrier(len(jobs))

            def run(i: int, jobs=jobs, barrier=barrier) -> int:
                action, model = jobs[i]
                client = clients[i % len(clients)]
                barrier.wait()
                if action == "star":
                    url = reverse("models:star", args=[model.pk])
                    return client.post(url, headers={"HX-Request": "true"}).status_code
                url = reverse("models:toggle", args=[model.pk])
                data = {"enabled": "false"}
                return client.post(url, data=data, headers={"HX-Request": "true"}).status_code

            with ThreadPoolExecutor(len(jobs)) as pool:
                statuses = list(pool.map(run, range(len(jobs))))
            assert statuses == [200] * len(jobs), f"round {round_number}: {statuses}"
            assert the_default_is_usable_or_absent(), f"round {round_number}"


def test_two_admins_adding_the_same_discovered_models_at_once(admin_user, django_user_model):
    """Ten rounds of 8 simultaneous "Add selected models" on one list: each model is added
    once, every losing request is told why nothing was added (422), none fails."""
    second = django_user_model.objects.create_user("bob", is_staff=True, is_superuser=True)
    with running_fake_provider() as (_, fake), served_app(workers=4) as base:
        provider = provider_save(
            provider_type="openai", actor=None, changes={"base_url": fake + "/v1"}, api_key="sk-x"
        )
        clients = [signed_in_client(base, user) for user in (admin_user, second) * 2]
        page = clients[0].get(reverse("models:discover", args=["openai"])).text
        signed = re.search(r'name="discovered" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        data = {"discovered": signed}
        for row in ("m0", "m1"):
            data |= {f"{row}-add": "on", f"{row}-display_name": row, f"{row}-context_limit": "1000"}
        url = reverse("models:discover-add", args=["openai"])
        for round_number in range(10):
            ModelConfig.objects.all().delete()
            barrier = threading.Barrier(8)

            def add(i: int, barrier=barrier) -> tuple[int, str]:
                barrier.wait()
                response = clients[i % 4].post(url, data=data)
                return response.status_code, response.text

            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(add, range(8)))
            statuses = sorted(status for status, _ in results)
            assert statuses == [302] + [422] * 7, f"round {round_number}: {statuses}"
            taken = "Someone else added fake-gpt, fake-gpt-mini while you were choosing"
            assert all(taken in text for status, text in results if status == 422)
            assert ModelConfig.objects.filter(provider=provider).count() == 2
