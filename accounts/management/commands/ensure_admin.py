import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Make sure a first admin exists: taken from DJANGO_SUPERUSER_USERNAME / "
        "DJANGO_SUPERUSER_PASSWORD (and _EMAIL) when set, else asked for on a terminal."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        admins = get_user_model().objects.filter(is_superuser=True, is_active=True)
        if admins.exists():
            self.stdout.write(f"Admin user present: {admins.first()}")
            return
        if os.environ.get("DJANGO_SUPERUSER_USERNAME") and os.environ.get(
            "DJANGO_SUPERUSER_PASSWORD"
        ):
            call_command("createsuperuser", interactive=False, verbosity=0)
            self.stdout.write(f"Created admin user {os.environ['DJANGO_SUPERUSER_USERNAME']}.")
        elif sys.stdin.isatty():
            self.stdout.write("No admin user yet. Create the first one:")
            call_command("createsuperuser", interactive=True)
        else:
            self.stderr.write(
                "No admin user yet: set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD "
                "or run `manage.py createsuperuser`."
            )
