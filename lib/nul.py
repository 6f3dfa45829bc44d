"""Refuse NUL bytes in addresses, query strings and cookies before anything else reads them.

PostgreSQL cannot store or compare text holding a NUL byte (it raises DataError), so a filter
such as ``?action__exact=%00`` or a forged session cookie would otherwise become a 500. Form
fields refuse NUL bytes themselves, next to the field.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

REASON = "The request contains a NUL byte, which nothing here accepts."


class RefuseNulBytesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul_byte(request):
            return render(request, "400.html", {"reason": REASON}, status=400)
        return self.get_response(request)


def has_nul_byte(request: HttpRequest) -> bool:
    if "\x00" in request.path or "\x00" in request.path_info:
        return True
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return True
    return any("\x00" in k or "\x00" in v for k, v in request.COOKIES.items())
