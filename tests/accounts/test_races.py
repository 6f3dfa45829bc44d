"""Two admins demoting each other at once, through HTTP against 4 workers on PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.servers import served_app, signed_in_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_admins_demoting_each_other_leave_one_admin(admin_user, developer):
    User = get_user_model()
    with served_app(workers=4) as base:
        for round_number in range(10):
            User.objects.filter(pk__in=[admin_user.pk, developer.pk]).update(
                is_staff=True, is_superuser=True
            )
            pairs = [(admin_user, developer), (developer, admin_user)]
            clients = [signed_in_client(base, actor) for actor, _ in pairs]
            barrier = threading.Barrier(2)

            def demote(i: int, clients=clients, barrier=barrier, pairs=pairs) -> int:
                barrier.wait()
                target = pairs[i][1]
                url = reverse("accounts:person-role", args=[target.pk])
                return clients[i].post(url, data={"role": "developer"}).status_code

            with ThreadPoolExecutor(2) as pool:
                statuses = list(pool.map(demote, range(2)))
            # 302: done or refused with a message; 403: already demoted when it arrived.
            assert set(statuses) <= {302, 403}, statuses
            admins = User.objects.filter(is_staff=True, is_active=True).count()
            assert admins == 1, round_number
