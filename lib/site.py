"""The address people and tools reach this server at, for the links it makes."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

# What `make run` serves on, when nothing says otherwise (commands have no request to ask).
LOCAL = "http://127.0.0.1:8000"


def site_url(request: HttpRequest | None = None) -> str:
    """``SITE_URL`` when set (behind a proxy or load balancer, the address people use);
    else the address the request came to; else the local address. No trailing slash."""
    if settings.SITE_URL:
        return str(settings.SITE_URL).rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return LOCAL
