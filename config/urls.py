from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.access import staff_required
from accounts.forms import AdminSignInForm
from accounts.urls import sign_in_patterns

admin.site.login_form = AdminSignInForm

urlpatterns = [
    *sign_in_patterns,
    path("", include("accounts.urls")),
    path(
        "admin/",
        staff_required(RedirectView.as_view(pattern_name="providers:list")),
        name="admin-dialog",
    ),
    path("admin/", include("providers.urls")),
    path("admin/models/", include("models_catalog.urls")),
    path("admin/audit/", include("audit.urls")),
    path("admin/budgets/", include("spend.urls")),
    path("settings/api-keys/", include("userkeys.urls")),
    path("", include("tokens.urls")),
    path("", include("gateway.urls")),
    path("", include("routing.urls")),
    path("", include("chats.urls")),
    path("django-admin/", admin.site.urls),
]
