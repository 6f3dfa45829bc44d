from django.urls import path

from . import views

app_name = "providers"

urlpatterns = [
    path("providers/", views.provider_list, name="list"),
    path("providers/<str:provider_type>/", views.provider_edit, name="edit"),
    path("providers/<str:provider_type>/delete/", views.provider_delete_view, name="delete"),
    path("providers/<str:provider_type>/test/", views.provider_test, name="test"),
    path("providers/<str:provider_type>/keys/", views.central_key_add, name="key_add"),
    path(
        "providers/<str:provider_type>/keys/remove/",
        views.central_key_remove,
        name="key_remove",
    ),
    path("providers/<str:provider_type>/keys/fixed/", views.central_key_fixed, name="key_fixed"),
    path("providers/<str:provider_type>/retry/", views.breaker_retry, name="breaker_retry"),
]
