from django.apps import AppConfig


class ModelsCatalogConfig(AppConfig):
    name = "models_catalog"
    verbose_name = "Models"

    def ready(self) -> None:
        from providers.services import before_provider_delete

        from .services import release_default_of_provider

        if release_default_of_provider not in before_provider_delete:
            before_provider_delete.append(release_default_of_provider)
