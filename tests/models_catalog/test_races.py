"""Finding 4 of the hardening probe: stars and disables at once, through HTTP, 4 workers."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from models_catalog.models import ModelConfig
from tests.servers import served_app, signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def the_default_is_usable_or_absent() -> bool:
    defaults = list(ModelConfig.objects.select_related("provider").filter(is_default=True))
    return len(defaults) <= 1 and all(m.enabled and m.provider.enabled for m in defaults)


def test_finding_4_ten_stars_and_ten_disables_at_once_for_twenty_rounds(admin_user, make_model):
    models = [make_model(f"model-{i}") for i in range(10)]
    rng = random.Random(7)
    with served_app(workers=4) as base:
        clients = [signed_in_client(base, admin_user) for _ in range(4)]
        for round_number in range(20):
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
