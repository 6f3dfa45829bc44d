from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("settings/tokens/", views.token_list, name="list"),
    path("settings/tokens/new/", views.token_new, name="new"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke_view, name="revoke"),
    path(
        "settings/sessions/sign-out-others/", views.sessions_sign_out_others, name="sign-out-others"
    ),
    path("admin/tokens/", views.admin_token_list, name="admin-list"),
    path("admin/tokens/<int:pk>/revoke/", views.admin_token_revoke, name="admin-revoke"),
]
