from django.urls import path

from . import discovery, views

app_name = "models"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("add/", views.model_add, name="add"),
    path("purposes/", views.model_purposes, name="purposes"),
    path("aliases/", views.alias_add, name="alias-add"),
    path("aliases/<int:pk>/remove/", views.alias_remove, name="alias-remove"),
    path("discover/<str:provider_type>/", discovery.discover, name="discover"),
    path("discover/<str:provider_type>/add/", discovery.discover_add, name="discover-add"),
    path("<int:pk>/", views.model_edit, name="edit"),
    path("<int:pk>/default/", views.model_star, name="star"),
    path("<int:pk>/enabled/", views.model_toggle, name="toggle"),
    path("<int:pk>/delete/", views.model_delete_view, name="delete"),
]
