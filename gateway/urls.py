from django.urls import path

from . import views

app_name = "usage"

urlpatterns = [
    path("admin/usage/", views.usage_list, name="list"),
    path("settings/usage/", views.my_usage, name="mine"),
    path("metrics", views.metrics, name="metrics"),
]
