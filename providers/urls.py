from django.urls import path

from . import views

app_name = "providers"

urlpatterns = [
    path("providers/", views.provider_list, name="list"),
    path("providers/<str:provider_type>/", views.provider_edit, name="edit"),
    path("providers/<str:provider_type>/delete/", views.provider_delete_view, name="delete"),
    path("providers/<str:provider_type>/test/", views.provider_test, name="test"),
]
