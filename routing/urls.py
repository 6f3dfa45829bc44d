from django.urls import path

from . import views

app_name = "routing"

urlpatterns = [
    path("api/models/available", views.available_models_api, name="available-models"),
]
