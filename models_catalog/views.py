from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from lib.http import HtmxHttpRequest
from lib.parse import parse_id
from providers.models import Provider
from routing.reach import default_model_warnings
from routing.view_as import view_as

from .forms import ModelAliasForm, bound_model_form
from .models import OVERRIDABLE_PURPOSES, ModelAlias, ModelConfig, Purpose, PurposeModel
from .services import (
    DefaultMoved,
    alias_delete,
    alias_set,
    model_clear_default,
    model_delete,
    model_fallbacks_set,
    model_save,
    model_set_default,
    model_set_enabled,
    purpose_model_set,
)

LIST_TEMPLATE = "models_catalog/models_tab.html"
FORM_TEMPLATE = "models_catalog/model_form.html"


PURPOSE_HELP = {
    Purpose.TITLE: "Names new chats (and quick one-off generations). Automatic: a small model "
    "such as Claude Haiku, GPT-5 mini or Gemini Flash, else the chat's model.",
    Purpose.ADVISOR: "Reviews the agent's plan. Automatic: the chat's model.",
    Purpose.SUBAGENT: "Runs subagent chats. Automatic: the chat's model.",
}


@dataclass
class PurposeSetting:
    purpose: Purpose
    model: ModelConfig | None

    @property
    def help(self) -> str:
        return PURPOSE_HELP[self.purpose]


@dataclass
class ProviderGroup:
    provider: Provider
    models: list[ModelConfig] = field(default_factory=list)


def _get_model(pk: int) -> ModelConfig:
    model = ModelConfig.objects.with_provider().filter(pk=pk).first()
    if model is None:
        raise Http404("No such model")
    return model


def _provider_from(value: str | None) -> Provider | None:
    pk = parse_id(value)
    return Provider.objects.filter(pk=pk).first() if pk is not None else None


def _say_moved(request: HtmxHttpRequest, moved: DefaultMoved | None) -> None:
    if moved is not None:
        messages.warning(request, moved.message())


def _list_context(
    request: HtmxHttpRequest | None = None, alias_form: ModelAliasForm | None = None
) -> dict:
    providers = list(Provider.objects.all())
    models = list(ModelConfig.objects.with_provider().in_display_order())
    default_model = next((m for m in models if m.is_default), None)
    groups = [
        ProviderGroup(provider, list(items))
        for provider, items in groupby(models, key=lambda m: m.provider)
    ]
    overrides = {o.purpose: o.model_id for o in PurposeModel.objects.all()}
    by_pk = {m.pk: m for m in models}
    return {
        "tab": "models",
        "purposes": [
            PurposeSetting(p, by_pk.get(overrides[p]) if p in overrides else None)
            for p in OVERRIDABLE_PURPOSES
        ],
        "enabled_models": [m for m in models if m.enabled and m.provider.enabled],
        "providers": providers,
        "groups": groups,
        "aliases": list(ModelAlias.objects.in_display_order()),
        "alias_form": alias_form or ModelAliasForm(),
        "model_count": len(models),
        "default_model": default_model,
        "star_warnings": default_model_warnings(default_model),
        "view_as": view_as(request) if request is not None and models else None,
        # In-page actions keep the "view as" user, so that view stays up to date.
        "keep_query": f"?{urlencode({'as_user': who})}"
        if request is not None and (who := request.GET.get("as_user", "").strip())
        else "",
    }


def _render_list(
    request: HtmxHttpRequest, alias_form: ModelAliasForm | None = None, status: int = 200
) -> HttpResponse:
    template = f"{LIST_TEMPLATE}#model-list" if request.htmx else LIST_TEMPLATE
    return render(request, template, _list_context(request, alias_form), status=status)


@staff_required
def model_list(request: HtmxHttpRequest) -> HttpResponse:
    return _render_list(request)


@staff_required
@require_http_methods(["GET", "POST"])
def model_add(request: HtmxHttpRequest) -> HttpResponse:
    return _model_form(request, instance=None)


@staff_required
@require_http_methods(["GET", "POST"])
def model_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _model_form(request, instance=_get_model(pk))


def _model_form(request: HtmxHttpRequest, *, instance: ModelConfig | None) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    provider = _provider_from(source.get("provider")) or (instance.provider if instance else None)
    if request.method == "GET":
        form = bound_model_form(instance=instance, provider=provider)
        context = {"form": form, "model": instance, "tab": "models", "provider": provider}
        if request.htmx and request.htmx.target == "provider-options":
            return render(request, f"{FORM_TEMPLATE}#provider-options", context)
        return render(request, FORM_TEMPLATE, context)

    form = bound_model_form(
        data=request.POST, instance=instance or ModelConfig(), provider=provider
    )
    if form.is_valid() and provider is not None:
        try:
            with transaction.atomic():
                saved, moved = model_save(
                    model=instance,
                    provider=provider,
                    fields=form.fields_to_save(),
                    options=form.options(),
                    actor=request.user,
                )
                model_fallbacks_set(model=saved, fallbacks=form.fallbacks(), actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{saved} saved.")
            _say_moved(request, moved)
            return redirect("models:list")
    context = {"form": form, "model": instance, "tab": "models", "provider": provider}
    return render(request, FORM_TEMPLATE, context, status=422)


@staff_required
@require_POST
def model_star(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    model = _get_model(pk)
    if model.is_default:
        model_clear_default(actor=request.user)
        messages.info(request, f"{model} is no longer the default; there is no default model.")
        return _after_list_action(request)
    try:
        model_set_default(model=model, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{model} is now the default model.")
    return _after_list_action(request)


@staff_required
@require_POST
def model_toggle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    model = _get_model(pk)
    enabled = request.POST.get("enabled") == "true"
    moved = model_set_enabled(model=model, enabled=enabled, actor=request.user)
    messages.success(request, f"{model} {'enabled' if enabled else 'disabled'}.")
    _say_moved(request, moved)
    return _after_list_action(request)


@staff_required
@require_http_methods(["GET", "POST"])
def model_delete_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    model = _get_model(pk)
    if request.method == "POST":
        moved = model_delete(model=model, actor=request.user)
        messages.success(request, f"{model} deleted.")
        _say_moved(request, moved)
        return _after_list_action(request)
    return render(
        request, "models_catalog/model_confirm_delete.html", {"model": model, "tab": "models"}
    )


def _after_list_action(request: HtmxHttpRequest) -> HttpResponse:
    if request.htmx:
        return _render_list(request)
    return redirect(reverse("models:list"))


@staff_required
@require_POST
def model_purposes(request: HtmxHttpRequest) -> HttpResponse:
    """Save the per-purpose model settings; blank means automatic."""
    for purpose in OVERRIDABLE_PURPOSES:
        raw = request.POST.get(purpose.value)
        if raw is None:
            continue
        model = None
        if raw:
            pk = parse_id(raw)
            model = ModelConfig.objects.with_provider().filter(pk=pk).first() if pk else None
            if model is None:
                messages.error(request, f"The model chosen for {purpose.label.lower()} is gone.")
                continue
        try:
            if purpose_model_set(purpose=purpose, model=model, actor=request.user):
                messages.success(
                    request,
                    f"{purpose.label}: {model if model else 'automatic choice'}.",
                )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return _after_list_action(request)


@staff_required
@require_POST
def alias_add(request: HtmxHttpRequest) -> HttpResponse:
    """Answer a name callers ask for (a coding agent's default model, say) with a model."""
    form = ModelAliasForm(request.POST)
    if form.is_valid():
        model = form.cleaned_data["model"]
        try:
            alias = alias_set(
                provider=model.provider,
                pattern=form.cleaned_data["pattern"],
                model=model,
                actor=request.user,
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, f"Calls naming {alias.pattern} now reach {model}.")
            return _after_list_action(request)
    return _render_list(request, form, status=200 if request.htmx else 422)


@staff_required
@require_POST
def alias_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    alias = ModelAlias.objects.select_related("provider", "model").filter(pk=pk).first()
    if alias is None:
        raise Http404("No such alias")
    alias_delete(alias=alias, actor=request.user)
    messages.success(request, f"Calls naming {alias.pattern} reach no model now.")
    return _after_list_action(request)
