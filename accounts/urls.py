from django.contrib.auth import views as auth_views
from django.urls import path

from . import health, oidc, people, views
from .access import staff_required
from .forms import SignInForm

app_name = "accounts"

urlpatterns = [
    path("admin/people/", staff_required(people.people_list), name="people"),
    path("admin/people/invite/", staff_required(people.invite), name="invite"),
    path(
        "admin/people/invitations/<int:pk>/revoke/",
        staff_required(people.invitation_revoke),
        name="invitation-revoke",
    ),
    path("admin/people/<int:pk>/", staff_required(people.person), name="person"),
    path("admin/people/<int:pk>/role/", staff_required(people.person_role), name="person-role"),
    path(
        "admin/people/<int:pk>/deactivate/",
        staff_required(people.person_deactivate),
        name="person-deactivate",
    ),
    path(
        "admin/people/<int:pk>/reactivate/",
        staff_required(people.person_reactivate),
        name="person-reactivate",
    ),
    path(
        "admin/people/<int:pk>/delete/", staff_required(people.person_delete), name="person-delete"
    ),
    path(
        "admin/people/<int:pk>/groups/", staff_required(people.person_groups), name="person-groups"
    ),
    path("admin/groups/new/", staff_required(people.group_create), name="group-create"),
    path("admin/groups/<int:pk>/", staff_required(people.group_detail), name="group"),
    path(
        "admin/groups/<int:pk>/members/", staff_required(people.group_members), name="group-members"
    ),
    path("admin/groups/<int:pk>/delete/", staff_required(people.group_delete), name="group-delete"),
    path("invite/<str:token>/", views.invite_accept, name="accept"),
]

# Names Django's auth and mozilla-django-oidc expect, outside the app namespace.
sign_in_patterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        views.SignInView.as_view(authentication_form=SignInForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("oidc/authenticate/", oidc.SignInView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
]
