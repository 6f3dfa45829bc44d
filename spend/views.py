from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import staff_required
from lib.http import HtmxHttpRequest

from .forms import BudgetForm, RateLimitForm, TargetForm
from .models import Budget, RateLimit
from .services import budget_delete, budget_set, limit_delete, limit_set, standings

LIST_TEMPLATE = "spend/budgets_tab.html"


def _render_list(
    request: HtmxHttpRequest,
    form: BudgetForm | None = None,
    status: int = 200,
    limit_form: RateLimitForm | None = None,
    partial: str = "budget-list",
) -> HttpResponse:
    rows = standings(Budget.objects.in_display_order())
    context = {
        "tab": "budgets",
        "standings": rows,
        "near": [s for s in rows if s.near or s.over],
        "form": form or BudgetForm(),
        "limits": standings(RateLimit.objects.in_display_order()),
        "limit_form": limit_form or RateLimitForm(),
        "count_personal_keys": settings.BUDGETS_COUNT_PERSONAL_KEYS,
        # The rate limits' part alone (HTMX): it shows the messages the page shows on top.
        "limits_alone": request.htmx and partial == "limit-list",
    }
    template = f"{LIST_TEMPLATE}#{partial}" if request.htmx else LIST_TEMPLATE
    return render(request, template, context, status=status)


def _saved(request: HtmxHttpRequest, form: TargetForm, save: Callable[[], Budget]) -> bool:
    """Run ``save`` for the valid ``form``; False (its errors on the form) if refused."""
    try:
        saved = save()
    except ValidationError as error:
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
        return False
    messages.success(request, f"Saved: {saved}.")
    return True


def _save(request: HtmxHttpRequest, form: BudgetForm, budget: Budget | None) -> bool:
    """Set the budget the valid ``form`` describes; False (errors on the form) if refused."""
    return _saved(
        request,
        form,
        lambda: budget_set(
            scope=form.cleaned_data["scope"],
            period=form.cleaned_data["period"],
            limit_usd=form.cleaned_data["limit_usd"],
            hard=form.cleaned_data["hard"],
            actor=request.user,
            budget=budget,
            only_new=budget is None,
            **form.target(),
        ),
    )


@staff_required
def budget_list(request: HtmxHttpRequest) -> HttpResponse:
    return _render_list(request)


@staff_required
@require_POST
def budget_add(request: HtmxHttpRequest) -> HttpResponse:
    form = BudgetForm(request.POST)
    if form.is_valid() and _save(request, form, None):
        return _render_list(request) if request.htmx else redirect(reverse("budgets:list"))
    return _render_list(request, form, status=200 if request.htmx else 422)


def _budget(pk: int) -> Budget:
    budget = Budget.objects.select_related("group", "user", "token").filter(pk=pk).first()
    if budget is None:
        raise Http404("No such budget")
    return budget


@staff_required
@require_http_methods(["GET", "POST"])
def budget_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    budget = _budget(pk)
    form = BudgetForm(request.POST or None, budget=budget)
    if request.method == "POST" and form.is_valid() and _save(request, form, budget):
        return redirect(reverse("budgets:list"))
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "spend/budget_form.html",
        {"tab": "budgets", "form": form, "budget": budget},
        status=status,
    )


@staff_required
@require_POST
def budget_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    budget = _budget(pk)
    described = str(budget)
    budget_delete(budget=budget, actor=request.user)
    messages.success(request, f"Removed: {described}.")
    return _render_list(request) if request.htmx else redirect(reverse("budgets:list"))


# -- Rate limits ----------------------------------------------------------------------------


def _render_limits(
    request: HtmxHttpRequest, form: RateLimitForm | None = None, status: int = 200
) -> HttpResponse:
    return _render_list(request, status=status, limit_form=form, partial="limit-list")


def _save_limit(
    request: HtmxHttpRequest, form: RateLimitForm, rate_limit: RateLimit | None
) -> bool:
    return _saved(
        request,
        form,
        lambda: limit_set(
            scope=form.cleaned_data["scope"],
            unit=form.cleaned_data["unit"],
            limit=form.cleaned_data["limit_count"],
            actor=request.user,
            rate_limit=rate_limit,
            only_new=rate_limit is None,
            **form.target(),
        ),
    )


def _rate_limit(pk: int) -> RateLimit:
    rate_limit = RateLimit.objects.select_related("group", "user", "token").filter(pk=pk).first()
    if rate_limit is None:
        raise Http404("No such rate limit")
    return rate_limit


@staff_required
@require_POST
def limit_add(request: HtmxHttpRequest) -> HttpResponse:
    form = RateLimitForm(request.POST)
    if form.is_valid() and _save_limit(request, form, None):
        if request.htmx:
            return _render_limits(request)
        return redirect(reverse("budgets:list") + "#rate-limits")
    return _render_limits(request, form, status=200 if request.htmx else 422)


@staff_required
@require_http_methods(["GET", "POST"])
def limit_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    rate_limit = _rate_limit(pk)
    form = RateLimitForm(request.POST or None, budget=rate_limit)
    if request.method == "POST" and form.is_valid() and _save_limit(request, form, rate_limit):
        return redirect(reverse("budgets:list") + "#rate-limits")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "spend/limit_form.html",
        {"tab": "budgets", "form": form, "rate_limit": rate_limit},
        status=status,
    )


@staff_required
@require_POST
def limit_remove(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    rate_limit = _rate_limit(pk)
    described = str(rate_limit)
    limit_delete(rate_limit=rate_limit, actor=request.user)
    messages.success(request, f"Removed: {described}.")
    if request.htmx:
        return _render_limits(request)
    return redirect(reverse("budgets:list") + "#rate-limits")
