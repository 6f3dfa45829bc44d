from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from . import oidc
from .forms import AcceptForm
from .services import UNUSABLE, invitation_accept, invitation_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("chats:agents")


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None):
    """django-axes calls this when a sign-in is refused for too many failures."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes},
        status=429,
    )


class SignInView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = oidc.enabled()
        context["sso_name"] = settings.OIDC_PROVIDER_NAME
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        context["passwords_off"] = settings.PASSWORD_SIGN_IN == "break_glass"
        # A first run served without an admin (no terminal to ask on): nobody could sign in.
        context["no_admin"] = not get_user_model().objects.filter(is_active=True).exists()
        return context


@never_cache
@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone holding the link: create the invited account, once."""
    invitation = invitation_for(token)
    if invitation is None or invitation.state() != "pending":
        reason = UNUSABLE.get(
            invitation.state() if invitation else "", "This invitation link is not valid."
        )
        return render(request, "accounts/invite_unusable.html", {"reason": reason}, status=410)
    suggested = invitation.username or (invitation.email.split("@")[0] if invitation.email else "")
    form = AcceptForm(request.POST or None, initial={"username": suggested})
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error.messages)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "accounts/invite_accept.html",
        {"form": form, "invitation": invitation},
        status=status,
    )
