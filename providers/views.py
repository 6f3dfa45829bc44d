from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from lib.http import HtmxHttpRequest
from routing.reach import Reach, provider_reach
from ui.setup import setup_checklist

from .forms import CentralKeyForm, ProviderForm
from .models import Breaker, KeyState, Provider, ProviderStatus
from .policy import PolicyExplanation, central_key_unused, explain_policy
from .probe import ConnectionResult, Outcome, check_connection
from .registry import REGISTRY, ProviderType, ProviderTypeSpec
from .services import (
    breaker_try_now,
    key_attention_clear,
    provider_delete,
    provider_key_add,
    provider_key_remove,
    provider_save,
)

TEMPLATE = "providers/providers_tab.html"


@dataclass
class ProviderRow:
    """One card of the Providers tab: a provider type and, if configured, its row."""

    spec: ProviderTypeSpec
    provider: Provider | None
    form: ProviderForm | None = None
    confirm_delete: list[str] | None = None
    just_saved: bool = False
    notes: list[str] = field(default_factory=list)
    reach: Reach | None = None
    test_result: ConnectionResult | None = None
    key_form: CentralKeyForm | None = None
    key_results: list[tuple[str, ConnectionResult]] = field(default_factory=list)
    key_notice: str = ""

    @property
    def keys(self) -> list[Any]:
        return self.provider.central_keys() if self.provider else []

    @property
    def open_breakers(self) -> list[Breaker]:
        """Its models whose calls are paused (or being tried again) by the gateway."""
        if self.provider is None:
            return []
        return [b for b in self.provider.breakers.all() if b.open_until is not None]

    @property
    def policy(self) -> PolicyExplanation | None:
        if self.provider is None:
            return None
        p = self.provider
        return explain_policy(
            central=p.central_key_enabled, user=p.user_keys_allowed, fallback=p.central_key_fallback
        )

    @property
    def central_key_unused(self) -> str:
        if self.provider is None:
            return ""
        p = self.provider
        return central_key_unused(
            central=p.central_key_enabled,
            user=p.user_keys_allowed,
            fallback=p.central_key_fallback,
            key_stored=p.api_key is not None,
        )

    @property
    def type(self) -> str:
        return self.spec.type.value

    @property
    def status(self) -> ProviderStatus:
        return self.provider.status if self.provider else ProviderStatus.NOT_CONFIGURED


def _provider_type(value: str) -> ProviderType:
    try:
        return ProviderType(value)
    except ValueError:
        raise Http404("Unknown provider type") from None


def _rows() -> dict[str, ProviderRow]:
    providers = {p.type: p for p in _with_keys_and_breakers(Provider.objects.all())}
    reach = provider_reach(providers.values()) if providers else {}
    return {
        t.value: ProviderRow(
            spec,
            provider := providers.get(t.value),
            reach=reach.get(provider.pk) if provider else None,
        )
        for t, spec in REGISTRY.items()
    }


def _row(spec: ProviderTypeSpec, provider: Provider | None, **extra: Any) -> ProviderRow:
    """One card on its own (after an in-page action), with its reach counted afresh."""
    reach = provider_reach([provider])[provider.pk] if provider is not None else None
    return ProviderRow(spec, provider, reach=reach, **extra)


def _render(
    request: HtmxHttpRequest,
    row: ProviderRow,
    rows: dict[str, ProviderRow] | None = None,
    status: int = 200,
) -> HttpResponse:
    """An HTMX request gets the one card; a plain one gets the whole tab with that card open."""
    if request.htmx:
        return render(request, f"{TEMPLATE}#provider-card", {"row": row}, status=status)
    rows = rows or _rows()
    rows[row.type] = row
    return render(request, TEMPLATE, {"rows": rows.values(), "tab": "providers"}, status=status)


@staff_required
def provider_list(request: HtmxHttpRequest) -> HttpResponse:
    rows = _rows()
    configured = [row.provider for row in rows.values() if row.provider is not None]
    people = next((row.reach.total for row in rows.values() if row.reach), None)
    checklist = setup_checklist(configured, people)
    context = {
        "rows": rows.values(),
        "tab": "providers",
        "checklist": None if checklist.complete else checklist,
    }
    return render(request, TEMPLATE, context)


@staff_required
@sensitive_post_parameters("api_key")
@require_http_methods(["GET", "POST"])
def provider_edit(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    ptype = _provider_type(provider_type)
    rows = _rows()
    row = rows[ptype.value]
    if request.method == "GET":
        row.form = ProviderForm(instance=row.provider or Provider(type=ptype.value))
        return _render(request, row, rows)

    # The form validates on its own copy: a rejected edit must not show on the card as saved.
    form = ProviderForm(
        request.POST,
        instance=Provider.objects.filter(type=ptype.value).first() or Provider(type=ptype.value),
    )
    if form.is_valid():
        try:
            saved = provider_save(
                provider_type=ptype,
                actor=request.user,
                changes=form.changes(),
                api_key=form.key_change(),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            if not request.htmx:
                messages.success(request, f"{saved.label} saved.")
                for note in saved.side_effects:
                    messages.warning(request, note)
                return redirect("providers:list")
            return _render(
                request, _row(row.spec, saved, just_saved=True, notes=saved.side_effects)
            )
    row.form = form
    return _render(request, row, rows, status=200 if request.htmx else 422)


@staff_required
@require_http_methods(["GET", "POST"])
def provider_delete_view(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    ptype = _provider_type(provider_type)
    provider = Provider.objects.filter(type=ptype.value).first()
    if provider is None:
        raise Http404("This provider is not configured")
    if request.method == "POST":
        provider_delete(provider=provider, actor=request.user)
        if not request.htmx:
            messages.success(request, f"{provider.label} deleted.")
            return redirect("providers:list")
        return _render(request, ProviderRow(provider.spec, None))
    row = _row(provider.spec, provider, confirm_delete=_deletion_summary(provider))
    return _render(request, row)


@staff_required
@require_POST
async def provider_test(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    """One cheap call with each stored central key, at once; the card shows what happened."""
    ptype = _provider_type(provider_type)
    provider = await sync_to_async(_configured)(ptype)
    keys = [key for key in provider.central_keys() if key.key_state == KeyState.SET]  # type: ignore[attr-defined]
    key_results: list[tuple[str, ConnectionResult]] = []
    if keys:
        results = await asyncio.gather(
            *(check_connection(provider, key.api_key.reveal()) for key in keys)  # type: ignore[attr-defined]
        )
        key_results = [(key.key_label, found) for key, found in zip(keys, results, strict=True)]
        result = results[0] if len(results) == 1 else _keys_result(key_results)
    else:
        result = ConnectionResult(
            Outcome.FAILED,
            "No usable central key is stored, so there is nothing to test. Developers can test "
            "their own keys in Settings → API Keys.",
        )
    shown = key_results if len(key_results) > 1 else []
    return await sync_to_async(
        lambda: _render(
            request, _row(provider.spec, provider, test_result=result, key_results=shown)
        )
    )()


def _keys_result(key_results: list[tuple[str, ConnectionResult]]) -> ConnectionResult:
    """Several keys tested: works when all work, else names the ones that do not."""
    failing = [(label, found) for label, found in key_results if not found.works]
    if not failing:
        return ConnectionResult(Outcome.WORKS, f"All {len(key_results)} central keys work.")
    named = "; ".join(f"{label}: {found.message}" for label, found in failing)
    working = len(key_results) - len(failing)
    return ConnectionResult(
        failing[0][1].outcome,
        f"{working} of {len(key_results)} central keys work. {named}",
        failing[0][1].status,
    )


def _with_keys_and_breakers(providers: Any) -> Any:
    return providers.prefetch_related("further_keys", "breakers")


def _configured(ptype: ProviderType) -> Provider:
    provider = _with_keys_and_breakers(Provider.objects.filter(type=ptype.value)).first()
    if provider is None:
        raise Http404("This provider is not configured")
    return provider  # type: ignore[no-any-return]


def _fresh(provider: Provider) -> Provider:
    return _with_keys_and_breakers(Provider.objects.filter(pk=provider.pk)).get()  # type: ignore[no-any-return]


@staff_required
@sensitive_post_parameters("api_key")
@require_http_methods(["GET", "POST"])
def central_key_add(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    """Add a further central key (the card's "Add a key" form)."""
    provider = _configured(_provider_type(provider_type))
    if request.method == "GET":
        row = _row(provider.spec, provider, key_form=CentralKeyForm(provider_type=provider.type))
        return _render(request, row)
    form = CentralKeyForm(request.POST, provider_type=provider.type)
    if form.is_valid():
        label = form.cleaned_data["key_label"]
        try:
            provider_key_add(
                provider=provider,
                label=label,
                raw_key=form.cleaned_data["api_key"],
                actor=request.user,
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _after_key_change(request, provider, f"Key {label!r} added.")
    row = _row(provider.spec, provider, key_form=form)
    return _render(request, row, status=200 if request.htmx else 422)


@staff_required
@require_POST
def central_key_remove(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    provider = _configured(_provider_type(provider_type))
    label = request.POST.get("key_label", "")
    try:
        provider_key_remove(provider=provider, label=label, actor=request.user)
    except ValidationError as error:
        notice = " ".join(error.messages)
    else:
        notice = f"Key {label!r} removed."
    return _after_key_change(request, provider, notice)


@staff_required
@require_POST
def central_key_fixed(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    """An admin says a key that needed attention is fixed at the provider."""
    provider = _configured(_provider_type(provider_type))
    label = request.POST.get("key_label", "")
    key_attention_clear(provider=provider, label=label, actor=request.user)
    return _after_key_change(request, provider, f"Key {label!r} is active again.")


@staff_required
@require_POST
def breaker_retry(request: HtmxHttpRequest, provider_type: str) -> HttpResponse:
    """An admin ends a model's pause: the next call tries the provider again."""
    provider = _configured(_provider_type(provider_type))
    model = request.POST.get("model_identifier", "")
    if breaker_try_now(provider=provider, model_identifier=model, actor=request.user):
        notice = f"The next call to {model} tries {provider.label} again."
    else:
        notice = f"Calls to {model} are not paused."
    return _after_key_change(request, provider, notice)


def _after_key_change(request: HtmxHttpRequest, provider: Provider, notice: str) -> HttpResponse:
    """The card afresh with ``notice`` (htmx), or the tab with it as a message."""
    if not request.htmx:
        messages.info(request, f"{provider.label}: {notice}")
        return redirect("providers:list")
    return _render(request, _row(provider.spec, _fresh(provider), key_notice=notice))


def _deletion_summary(provider: Provider) -> list[str]:
    """What goes with the provider, in words ("2 models", "5 user keys")."""
    collector = NestedObjects(using=DEFAULT_DB_ALIAS)
    collector.collect([provider])
    summary = []
    model: Any
    for model, objects in collector.model_objs.items():
        if model is Provider or not objects:
            continue
        meta = model._meta
        summary.append(
            f"{len(objects)} {meta.verbose_name if len(objects) == 1 else meta.verbose_name_plural}"
        )
    return summary
