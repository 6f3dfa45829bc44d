from django.apps import AppConfig


class UserkeysConfig(AppConfig):
    name = "userkeys"
    verbose_name = "User API keys"
