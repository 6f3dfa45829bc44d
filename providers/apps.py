from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEYRING_HINT = (
    "set LLMCP_ENCRYPTION_KEYS=k1:<key>, with a key from `python -c 'from cryptography.fernet "
    "import Fernet; print(Fernet.generate_key().decode())'`"
)


class ProvidersConfig(AppConfig):
    name = "providers"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the configuration checks)
        from .crypto import Keyring

        # Fail fast: a server that cannot encrypt or decrypt keys must not start and then
        # answer 500 on every page that touches one.
        keyring = Keyring.parse(settings.ENCRYPTION_KEYS)
        if not keyring.ids:
            raise ImproperlyConfigured(f"LLMCP_ENCRYPTION_KEYS is empty: {KEYRING_HINT}.")
