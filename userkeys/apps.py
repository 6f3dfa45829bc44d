from django.apps import AppConfig


class UserkeysConfig(AppConfig):
    name = "userkeys"
