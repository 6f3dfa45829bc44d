from __future__ import annotations

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

from .forms import ProviderForm
from .models import Provider, ProviderStatus
from .policy import PolicyExplanation, central_key_unused, explain_policy
from .probe import ConnectionResult, Outcome, check_connection
from .registry import REGISTRY, ProviderType, ProviderTypeSpec
from .services import provider_delete, provider_save

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
    providers = {p.type: p for p in Provider.objects.all()}
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
    """One cheap call with the stored central key; the card shows what happened."""
    ptype = _provider_type(provider_type)
    provider = await Provider.objects.filter(type=ptype.value).afirst()
    if provider is None:
        raise Http404("This provider is not configured")
    if provider.has_usable_key:
        result = await check_connection(provider, provider.api_key.reveal())  # type: ignore[union-attr]
    else:
        result = ConnectionResult(
            Outcome.FAILED,
            "No usable central key is stored, so there is nothing to test. Developers can test "
            "their own keys in Settings → API Keys.",
        )
    return await sync_to_async(
        lambda: _render(request, _row(provider.spec, provider, test_result=result))
    )()


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
