from typing import Any

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.commands.check import Command as DjangoCheckCommand


class Command(DjangoCheckCommand):
    help = (
        "Django's system checks plus this deployment's configuration: providers whose "
        "central key is missing, keys that cannot be decrypted, required base URLs."
    )

    def handle(self, *app_labels: Any, **options: Any) -> None:
        for label in app_labels:
            # Django's own check ends in a traceback for a label it does not know.
            if label not in {config.label for config in apps.get_app_configs()}:
                raise CommandError(f"No installed app is labelled {label!r}.")
        if not options.get("databases"):
            options["databases"] = ["default"]
        super().handle(*app_labels, **options)
