from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from lib.commands import OperatorCommand
from providers.rotation import RotationRefused, rotate_encryption_key


class Command(OperatorCommand):
    help = (
        "Re-encrypt every stored key under the first key of LLMCP_ENCRYPTION_KEYS. Put the new "
        "key first, keep the old one after it, run this, then remove the old key. Safe to rerun."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = rotate_encryption_key()
        except RotationRefused as error:
            raise CommandError(
                f"nothing changed: {len(error.undecryptable)} stored key(s) cannot be decrypted "
                f"with the current keyring: {'; '.join(error.undecryptable)}"
            ) from None
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Re-encrypted {report.reencrypted}, already current {report.already_current}, "
            f"empty {report.empty}."
        )
