from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Platform API tokens"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from . import services

        # Sign-in happens in several places we do not own (Django's login view, the Django
        # admin's, single sign-on, test clients); these signals are the one hook they share.
        user_logged_in.connect(services.on_user_logged_in, dispatch_uid="tokens.session_start")
        user_logged_out.connect(services.on_user_logged_out, dispatch_uid="tokens.session_end")
