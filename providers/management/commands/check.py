from typing import Any

from django.core.management.commands.check import Command as DjangoCheckCommand


class Command(DjangoCheckCommand):
    help = (
        "Django's system checks plus this deployment's configuration: providers whose "
        "central key is missing, keys that cannot be decrypted, required base URLs."
    )

    def handle(self, *app_labels: Any, **options: Any) -> None:
        if not options.get("databases"):
            options["databases"] = ["default"]
        super().handle(*app_labels, **options)
