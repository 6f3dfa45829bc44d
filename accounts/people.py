"""Admin -> People: users, invitations and groups."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from lib.parse import parse_id
from lib.site import site_url
from tokens.models import ApiToken, TokenKind
from userkeys.models import UserKey

from . import services
from .forms import GroupForm, InviteForm
from .models import Invitation, Role

TEMPLATE = "accounts/people.html"
PER_PAGE = 50


def _people(request: HttpRequest) -> Any:
    """Users with what the list shows, in a constant number of queries."""
    now = timezone.now()
    users = (
        get_user_model()
        .objects.order_by("username")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .annotate(
            has_keys=Exists(UserKey.objects.filter(user=OuterRef("pk"))),
            active_api_tokens=Count(
                "api_tokens",
                filter=Q(api_tokens__kind=TokenKind.API, api_tokens__revoked_at__isnull=True)
                & (Q(api_tokens__expires_at__isnull=True) | Q(api_tokens__expires_at__gt=now)),
            ),
        )
    )
    query = request.GET.get("q", "").strip()[:150]
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    role = request.GET.get("role", "")
    if role in Role.values:
        users = users.filter(is_staff=role == Role.ADMIN)
    status = request.GET.get("status", "")
    if status in ("active", "deactivated"):
        users = users.filter(is_active=status == "active")
    group = parse_id(request.GET.get("group"))
    if group:
        users = users.filter(groups=group)
    return users, {"q": query, "role": role, "status": status, "group": group}


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    users, filters = _people(request)
    return {
        "tab": "people",
        "page": Paginator(users, PER_PAGE).get_page(request.GET.get("page")),
        "filters": filters,
        "roles": Role.choices,
        "groups": list(Group.objects.order_by("name").annotate(members=Count("user"))),
        "invitations": list(Invitation.objects.pending().prefetch_related("groups")),
        "invite_form": extra.pop("invite_form", None) or InviteForm(),
        "group_form": extra.pop("group_form", None) or GroupForm(),
        **extra,
    }


def people_list(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _context(request))


@require_POST
def invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            new = services.invitation_create(
                email=data["email"],
                username=data["username"],
                role=data["role"],
                groups=list(data["groups"]),
                days=data["days"],
                actor=request.user,
                send_to=site_url(request) if data["send_email"] else "",
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            link = site_url(request) + reverse("accounts:accept", args=[new.token])
            return render(
                request,
                TEMPLATE,
                _context(request, new_invitation=new, invite_link=link),
                status=201,
            )
    return render(request, TEMPLATE, _context(request, invite_form=form), status=422)


def _form_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = Invitation.objects.filter(pk=pk).first()
    if invitation is None:
        raise Http404("No such invitation")
    services.invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, f"The invitation for {invitation.who} is withdrawn.")
    return redirect("accounts:people")


def _person(pk: int) -> Any:
    user = get_user_model().objects.filter(pk=pk).prefetch_related("groups").first()
    if user is None:
        raise Http404("No such person")
    return user


def person(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(pk)
    return render(
        request,
        "accounts/person.html",
        {
            "tab": "people",
            "person": user,
            "role": Role.ADMIN if user.is_staff else Role.DEVELOPER,
            "roles": Role.choices,
            "all_groups": Group.objects.order_by("name"),
            "tokens": ApiToken.objects.filter(user=user, kind=TokenKind.API).active().count(),
            "keys": UserKey.objects.filter(user=user).select_related("provider"),
            "deletion": services.deletion_summary(user),
        },
    )


def _act(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    user = _person(pk)
    try:
        changed = action(user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if changed is not False:
            messages.success(request, done.format(name=user.get_username()))
    return redirect("accounts:person", pk=pk)


@require_POST
def person_role(request: HttpRequest, pk: int) -> HttpResponse:
    role = request.POST.get("role", "")
    if role not in Role.values:
        messages.error(request, "Choose admin or developer.")
        return redirect("accounts:person", pk=pk)
    label = Role(role).label.lower()
    return _act(
        request,
        pk,
        lambda user: services.user_set_role(user=user, role=role, actor=request.user),
        f"{{name}} is now {label}.",
    )


@require_POST
def person_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda user: services.user_deactivate(user=user, actor=request.user),
        "{name} is deactivated: signed out everywhere, tokens revoked.",
    )


@require_POST
def person_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda user: services.user_reactivate(user=user, actor=request.user),
        "{name} can sign in again.",
    )


@require_http_methods(["GET", "POST"])
def person_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(pk)
    if request.method == "GET":
        return render(
            request,
            "accounts/person_delete.html",
            {"tab": "people", "person": user, "deletion": services.deletion_summary(user)},
        )
    try:
        services.user_delete(user=user, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("accounts:person", pk=pk)
    messages.success(request, f"{user.get_username()} is deleted. Their usage history is kept.")
    return redirect("accounts:people")


@require_POST
def person_groups(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(pk)
    wanted = {pk for pk in (parse_id(v) for v in request.POST.getlist("groups")) if pk is not None}
    for group in Group.objects.all():
        if group.pk in wanted:
            services.group_add_member(group=group, user=user, actor=request.user)
        else:
            services.group_remove_member(group=group, user=user, actor=request.user)
    messages.success(request, f"{user.get_username()}'s groups are saved.")
    return redirect("accounts:person", pk=pk)


# -- groups -----------------------------------------------------------------------------------


@require_POST
def group_create(request: HttpRequest) -> HttpResponse:
    form = GroupForm(request.POST)
    if form.is_valid():
        try:
            group = services.group_create(name=form.cleaned_data["name"], actor=request.user)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Group {group.name} created.")
            return redirect("accounts:group", pk=group.pk)
    return render(request, TEMPLATE, _context(request, group_form=form), status=422)


def _group(pk: int) -> Group:
    group = Group.objects.filter(pk=pk).first()
    if group is None:
        raise Http404("No such group")
    return group


@require_http_methods(["GET", "POST"])
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group(pk)
    form = GroupForm(request.POST or None, initial={"name": group.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.group_rename(group=group, name=form.cleaned_data["name"], actor=request.user)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Group renamed to {group.name}.")
            return redirect("accounts:group", pk=pk)
    members = group.user_set.order_by("username")
    return render(
        request,
        "accounts/group.html",
        {
            "tab": "people",
            "group": group,
            "form": form,
            "members": members,
            "candidates": get_user_model()
            .objects.exclude(pk__in=members.values("pk"))
            .order_by("username"),
        },
        status=422 if request.method == "POST" else 200,
    )


@require_POST
def group_members(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group(pk)
    user_pk = parse_id(request.POST.get("user"))
    user = get_user_model().objects.filter(pk=user_pk).first() if user_pk else None
    if user is None:
        messages.error(request, "Choose a person.")
    elif request.POST.get("action") == "remove":
        services.group_remove_member(group=group, user=user, actor=request.user)
        messages.success(request, f"{user.get_username()} left {group.name}.")
    else:
        services.group_add_member(group=group, user=user, actor=request.user)
        messages.success(request, f"{user.get_username()} joined {group.name}.")
    return redirect("accounts:group", pk=pk)


@require_POST
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group(pk)
    services.group_delete(group=group, actor=request.user)
    messages.success(request, f"Group {group.name} deleted (its members stay).")
    return redirect("accounts:people")
