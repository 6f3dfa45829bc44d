from django.urls import path

from . import views

app_name = "budgets"

urlpatterns = [
    path("", views.budget_list, name="list"),
    path("add/", views.budget_add, name="add"),
    path("<int:pk>/", views.budget_edit, name="edit"),
    path("<int:pk>/remove/", views.budget_remove, name="remove"),
    path("limits/add/", views.limit_add, name="limit_add"),
    path("limits/<int:pk>/", views.limit_edit, name="limit_edit"),
    path("limits/<int:pk>/remove/", views.limit_remove, name="limit_remove"),
]
