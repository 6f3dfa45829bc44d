"""``/healthz``, answered before anything reads the Host header.

Load balancers and Kubernetes probes call each replica by its own address (``Host:
10.0.3.7:8000``), which ALLOWED_HOSTS rightly does not list: behind Django's host check they
would get a 400 and take every replica out of service. The answer says only that the process
runs and reaches its database, whatever host was asked for.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

PATH = "/healthz"


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: the process answers and reaches its database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain")


class HealthCheckMiddleware:
    """First in MIDDLEWARE: ``/healthz`` is answered here, before the host check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
