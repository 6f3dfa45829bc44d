from django.apps import AppConfig


class FakeProviderConfig(AppConfig):
    name = "fakeprovider"
    verbose_name = "Local fake provider"
