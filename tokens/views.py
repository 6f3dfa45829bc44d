from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from lib.http import HtmxHttpRequest
from lib.site import site_url
from routing.availability import availability_for
from routing.deployment import gateway_enabled, tool_setup

from .forms import TokenCreateForm
from .models import ApiToken, TokenKind
from .services import NewToken, token_create, token_revoke, tokens_revoke_for_user

TEMPLATE = "tokens/tokens.html"
ADMIN_TEMPLATE = "tokens/admin_tokens.html"


def _own_token(request: HtmxHttpRequest, pk: int) -> ApiToken:
    token = ApiToken.objects.for_user(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404("No such token")
    token.user = request.user  # type: ignore[assignment]
    return token


def _page_context(
    request: HtmxHttpRequest, *, form: TokenCreateForm | None = None, new: NewToken | None = None
) -> dict:
    tokens = list(ApiToken.objects.for_user(request.user))
    for token in tokens:
        token.user = request.user  # type: ignore[assignment]
    current = getattr(request, "api_token", None)
    return {
        "settings_tab": "tokens",
        # Read only where the page shows it (not in the panel an HTMX action swaps).
        "connect": SimpleLazyObject(lambda: _connect(request)),
        "form": form or TokenCreateForm(),
        "new": new,
        "api_tokens": [t for t in tokens if t.kind == TokenKind.API],
        "sessions": [t for t in tokens if t.kind == TokenKind.SESSION and t.is_active],
        "current_token_id": current.pk if current else None,
    }


def _connect(request: HtmxHttpRequest) -> dict:
    """Where the person's tools point to call the providers they can use, on this server."""
    if not gateway_enabled():
        return {"gateway_on": False, "tools": [], "user_can_fix": False}
    availability = availability_for(request.user)
    origin = site_url(request)
    return {
        "gateway_on": True,
        "tools": [tool_setup(group.provider.type, origin) for group in availability.groups],
        "user_can_fix": availability.user_can_fix,
    }


@login_required
def token_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _page_context(request))


@login_required
@require_POST
def token_new(request: HtmxHttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            new = token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                lifetime=timedelta(days=form.cleaned_data["lifetime_days"]),
                actor=request.user,
            )
        except ValidationError as error:
            form.add_error("name", error.message_dict.get("name", error.messages))
        else:
            # Rendered, not redirected: the secret exists only in this one response.
            context = _page_context(request, new=new)
            template = f"{TEMPLATE}#tokens-panel" if request.htmx else TEMPLATE
            return render(request, template, context, status=201)
    template = f"{TEMPLATE}#tokens-panel" if request.htmx else TEMPLATE
    return render(request, template, _page_context(request, form=form), status=422)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = _own_token(request, pk)
    if request.method == "POST":
        token_revoke(token=token, actor=request.user)
        messages.success(
            request, f"{token.name} revoked. Anything using it is refused from now on."
        )
        if request.htmx:
            return render(request, f"{TEMPLATE}#tokens-panel", _page_context(request))
        return redirect("tokens:list")
    return render(
        request, "tokens/token_confirm_revoke.html", {"token": token, "settings_tab": "tokens"}
    )


@login_required
@require_POST
def sessions_sign_out_others(request: HtmxHttpRequest) -> HttpResponse:
    count = tokens_revoke_for_user(
        user=request.user,
        actor=request.user,
        kind=TokenKind.SESSION,
        keep=getattr(request, "api_token", None),
    )
    messages.success(
        request,
        f"Signed out {count} other session{'s' if count != 1 else ''}."
        if count
        else "There were no other sessions to sign out.",
    )
    return redirect("tokens:list")


@staff_required
def admin_token_list(request: HtmxHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:150]
    kind = request.GET.get("kind", "")
    tokens = ApiToken.objects.select_related("user")
    if query:
        tokens = tokens.filter(
            Q(user__username__icontains=query) | Q(name__icontains=query) | Q(lookup_id=query)
        )
    if kind in TokenKind.values:
        tokens = tokens.filter(kind=kind)
    if request.GET.get("status", "active") == "active":
        tokens = tokens.active()
    page = Paginator(tokens, 50).get_page(request.GET.get("page"))
    return render(
        request,
        ADMIN_TEMPLATE,
        {
            "tab": "tokens",
            "page": page,
            "q": query,
            "kind": kind,
            "status": request.GET.get("status", "active"),
            "kinds": TokenKind.choices,
        },
    )


@staff_required
@require_POST
def admin_token_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is None:
        raise Http404("No such token")
    if token_revoke(token=token, actor=request.user):
        messages.success(request, f"{token} of {token.user} revoked.")
    else:
        messages.info(request, f"{token} was already revoked.")
    back = request.POST.get("next", "")
    # Only back to the same list (keeping its filters); never to an address from outside.
    if not back.startswith(reverse("tokens:admin-list")):
        back = reverse("tokens:admin-list")
    return redirect(back)
