from django.apps import AppConfig


class ModelsCatalogConfig(AppConfig):
    name = "models_catalog"
    verbose_name = "Models"

    def ready(self) -> None:
        from providers.services import after_provider_disabled, before_provider_delete

        from .services import release_default_of_provider

        for hooks in (before_provider_delete, after_provider_disabled):
            if release_default_of_provider not in hooks:
                hooks.append(release_default_of_provider)
