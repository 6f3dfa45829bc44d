"""Discover models: list what a provider offers and add several at once, identifiers filled in.

The listing is one call to the provider (``providers.probe``) made by an async view, so a slow
provider holds nobody else up. What it found travels back with the form signed, so adding
the chosen models needs no second call and nobody can slip in a row the provider did not list.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import staff_required
from providers.models import Provider
from providers.probe import ConnectionResult, DiscoveredModel, Outcome, check_connection
from providers.registry import ProviderType

from .models import ModelConfig
from .options import validate_display_name
from .services import model_save

TEMPLATE = "models_catalog/discover.html"
SIGNING_SALT = "models_catalog.discovery"
DEFAULT_CONTEXT_LIMIT = 128_000


class DiscoveredRowForm(forms.Form):
    add = forms.BooleanField(required=False)
    display_name = forms.CharField(max_length=255, required=False, strip=True)
    context_limit = forms.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        error_messages={"max_value": "Enter a context limit below 2,147,483,648 tokens."},
    )

    def __init__(self, *args: Any, model: DiscoveredModel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = model
        self.fields["add"].label = f"Add {model.identifier}"
        self.fields["display_name"].label = f"Display name for {model.identifier}"
        self.fields["context_limit"].label = f"Context limit for {model.identifier}"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("add"):
            return data
        name = data.get("display_name") or ""
        try:
            validate_display_name(name)
        except ValidationError as error:
            self.add_error("display_name", error)
        if not data.get("context_limit") and "context_limit" not in self.errors:
            self.add_error("context_limit", "Enter the model's context limit in tokens.")
        return data


def _rows_form(models: list[DiscoveredModel], data: Any = None) -> list[DiscoveredRowForm]:
    return [
        DiscoveredRowForm(
            data,
            prefix=f"m{index}",
            model=model,
            initial={
                "display_name": model.display_name or _readable(model.identifier),
                "context_limit": model.context_limit or DEFAULT_CONTEXT_LIMIT,
            },
        )
        for index, model in enumerate(models)
    ]


def _readable(identifier: str) -> str:
    """The display name of a model the provider lists without one: its identifier, as the
    provider spells it (a guess from its parts would read "Gpt 5 Mini" or "Claude Opus 4 6")."""
    return identifier


# A discovered model's prices, in the order they are signed and saved.
_PRICES = (
    "input_price",
    "output_price",
    "cache_read_price",
    "cache_write_price",
    "web_search_price",
)


def _sign(models: list[DiscoveredModel]) -> str:
    rows = [
        [
            m.identifier,
            m.display_name,
            m.context_limit,
            *(_text(getattr(m, price)) for price in _PRICES),
        ]
        for m in models
    ]
    return signing.dumps(rows, salt=SIGNING_SALT, compress=True)


def _unsign(value: str) -> list[DiscoveredModel] | None:
    try:
        rows = signing.loads(value, salt=SIGNING_SALT, max_age=6 * 3600)
    except signing.BadSignature:
        return None
    # Shorter rows: a list signed before cache (5) or search (7) prices were kept, on a page
    # open across an upgrade; its models are added without them.
    return [
        DiscoveredModel(r[0], r[1], r[2], *(_decimal(price) for price in r[3:]))
        for r in rows
        if isinstance(r, list) and len(r) in (5, 7, 3 + len(_PRICES))
    ]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _provider_of_type(provider_type: str) -> Provider:
    provider = (
        Provider.objects.filter(type=provider_type).first()
        if provider_type in ProviderType.values
        else None
    )
    if provider is None:
        raise Http404("This provider is not configured")
    return provider


def _context(
    provider: Provider,
    result: ConnectionResult | None,
    models: list[DiscoveredModel],
    rows: Any,
    chosen: Any = (),
) -> dict[str, Any]:
    existing = set(provider.models.values_list("identifier", flat=True))
    return {
        "tab": "models",
        "provider": provider,
        "result": result,
        "rows": [r for r in rows if r.model.identifier not in existing],
        "already": sorted(m.identifier for m in models if m.identifier in existing),
        # Chosen here, but added by someone else meanwhile: the rows are gone, so say it.
        "taken": sorted(r.model.identifier for r in chosen if r.model.identifier in existing),
        "signed": _sign(models),
    }


@staff_required
@require_GET
async def discover(request: HttpRequest, provider_type: str) -> HttpResponse:
    provider = await sync_to_async(_provider_of_type)(provider_type)
    if provider.has_usable_key:
        result = await check_connection(
            provider,
            provider.api_key.reveal(),  # type: ignore[union-attr]
            discover=True,
        )
    else:
        result = ConnectionResult(
            Outcome.FAILED,
            f"Discovery lists models with the central key, and {provider.label} has no usable "
            "central key. Add models by hand, or store a central key first.",
        )
    models = result.models

    def page() -> HttpResponse:
        context = _context(provider, result, models, _rows_form(models))
        return render(request, TEMPLATE, context)

    return await sync_to_async(page)()


@staff_required
@require_POST
def discover_add(request: HttpRequest, provider_type: str) -> HttpResponse:
    provider = _provider_of_type(provider_type)
    models = _unsign(request.POST.get("discovered", ""))
    if models is None:
        messages.error(request, "This list is out of date; here is a fresh one.")
        return redirect("models:discover", provider_type=provider.type)
    rows = _rows_form(models, request.POST)
    chosen = [r for r in rows if r["add"].value()]
    invalid = [r for r in chosen if not r.is_valid()]
    if not chosen:
        messages.error(request, "Choose at least one model to add.")
    elif not invalid:
        try:
            with transaction.atomic():
                saved = [_save(provider, row, request.user) for row in chosen]
        except _RowRefused:
            pass  # the row carries the error; nothing was added
        else:
            names = ", ".join(str(m) for m in saved)
            plural = "" if len(saved) == 1 else "s"
            messages.success(
                request, f"Added {len(saved)} {provider.label} model{plural}: {names}."
            )
            return redirect("models:list")
    context = _context(provider, None, models, rows, chosen)
    return render(request, TEMPLATE, context, status=422)


class _RowRefused(Exception):
    pass


def _save(provider: Provider, row: DiscoveredRowForm, actor: Any) -> ModelConfig:
    fields = {
        "identifier": row.model.identifier,
        "display_name": row.cleaned_data["display_name"],
        "context_limit": row.cleaned_data["context_limit"],
        **{price: getattr(row.model, price) for price in _PRICES},
    }
    try:
        model, _ = model_save(model=None, provider=provider, fields=fields, options={}, actor=actor)
    except ValidationError as error:
        for field, problems in error.message_dict.items():
            target = field if field in row.fields else None
            for problem in problems:
                row.add_error(target, problem if target else f"{field}: {problem}")
        raise _RowRefused from None
    return model
