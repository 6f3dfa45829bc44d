"""The one place admin-only views are guarded: anonymous users go to login, others get 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

View = Callable[..., Any]


def staff_required(view: View) -> View:
    if iscoroutinefunction(view):
        return _async_staff_required(view)

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Only administrators can open this page.")
        return view(request, *args, **kwargs)

    return wrapped


def _async_staff_required(view: Any) -> Any:
    @login_required
    @wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = await request.auser()
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("Only administrators can open this page.")
        return await view(request, *args, **kwargs)

    return wrapped
