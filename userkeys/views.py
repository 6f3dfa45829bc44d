from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from lib.http import HtmxHttpRequest
from providers.probe import ConnectionResult, Outcome, check_connection
from providers.registry import ProviderType

from .cards import KeyCard, cards_for
from .forms import UserKeyForm
from .models import UserKey
from .services import user_key_delete, user_key_save

TEMPLATE = "userkeys/api_keys.html"


def _render(
    request: HtmxHttpRequest, card: KeyCard | None = None, status: int = 200
) -> HttpResponse:
    if request.htmx and card is not None:
        return render(request, f"{TEMPLATE}#key-card", {"card": card}, status=status)
    cards = cards_for(request.user)
    if card is not None:
        cards[card.provider.pk] = card
    return render(
        request, TEMPLATE, {"cards": cards.values(), "settings_tab": "api-keys"}, status=status
    )


def _card_for_type(request: HtmxHttpRequest, provider_type: str) -> KeyCard:
    """The user's own card for a provider that takes personal keys, else 404."""
    card = next(
        (c for c in cards_for(request.user).values() if c.provider.type == provider_type), None
    )
    if card is None or provider_type not in ProviderType.values:
        raise Http404("This provider does not accept personal API keys")
    return card


@login_required
def api_keys(request: HtmxHttpRequest) -> HttpResponse:
    return _render(request)


@login_required
@require_POST
@sensitive_post_parameters("api_key")
def api_key_save(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    card = _card_for_type(request, provider_type)
    form = UserKeyForm(request.POST)
    if form.is_valid():
        try:
            key = user_key_save(
                user=request.user,
                provider=card.provider,
                raw_key=form.cleaned_data["api_key"],
                actor=request.user,
            )
        except ValidationError as error:
            form.add_error("api_key", error.message_dict.get("api_key", error.messages))
        else:
            if not request.htmx:
                return redirect("userkeys:list")
            return _render(request, KeyCard(card.provider, key, just_saved=True))
    card.form = form
    return _render(request, card, status=200 if request.htmx else 422)


@login_required
@require_http_methods(["GET", "POST"])
def api_key_remove(request: HtmxHttpRequest, key_id: int) -> HttpResponse:
    """GET asks for confirmation in the card itself; POST removes the key."""
    key = (
        UserKey.objects.for_user(request.user).select_related("provider").filter(pk=key_id).first()
    )
    if key is None:
        raise Http404("No such key")
    provider = key.provider
    if request.method == "GET":
        return _render(request, KeyCard(provider, key, confirm_remove=True))
    user_key_delete(key=key, actor=request.user)
    if not request.htmx:
        return redirect("userkeys:list")
    if not (provider.enabled and provider.user_keys_allowed):
        return HttpResponse("")
    return _render(request, KeyCard(provider, None, just_removed=True))


@login_required
@require_POST
async def api_key_test(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    """One cheap call to the provider with the user's own saved key: the Test key button,
    and the card itself right after a key is saved (so a rejected key says so at once;
    it stays saved either way)."""
    card = await sync_to_async(_card_for_type)(request, provider_type)
    secret = card.key.api_key if card.key is not None else None
    if secret is None or secret.needs_reentry:
        card.test_result = ConnectionResult(
            Outcome.FAILED, "You have no saved key that can be tested. Save your key first."
        )
    else:
        card.test_result = await check_connection(card.provider, secret.reveal())
        card.tested_on_save = request.POST.get("after_save") == "1"
    return await sync_to_async(_render)(request, card)
