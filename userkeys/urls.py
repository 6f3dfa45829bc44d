from django.urls import path

from . import views

app_name = "userkeys"

urlpatterns = [
    path("", views.api_keys, name="list"),
    path("<int:key_id>/remove/", views.api_key_remove, name="remove"),
    path("<str:provider_type>/test/", views.api_key_test, name="test"),
    path("<str:provider_type>/", views.api_key_save, name="save"),
]
