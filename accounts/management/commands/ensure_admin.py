import os
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Make sure a first admin exists: taken from DJANGO_SUPERUSER_USERNAME / "
        "DJANGO_SUPERUSER_PASSWORD (and _EMAIL) when set, else asked for on a terminal."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        admins = User.objects.filter(is_superuser=True, is_active=True)
        if admins.exists():
            self.stdout.write(f"Admin user present: {admins.first()}")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if username and password:
            user = User(username=username)
            try:
                validate_password(password, user)
            except ValidationError as error:
                raise CommandError(
                    f"DJANGO_SUPERUSER_PASSWORD refused: {' '.join(error.messages)}"
                ) from None
            User.objects.create_superuser(
                username, os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password
            )
            self.stdout.write(f"Created admin user {username}.")
        elif sys.stdin.isatty():
            self.stdout.write("No admin user yet. Create the first one:")
            call_command("createsuperuser", interactive=True)
        else:
            self.stderr.write(
                "No admin user yet: set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD "
                "or run `manage.py createsuperuser`."
            )
