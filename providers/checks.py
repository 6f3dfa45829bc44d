"""Configuration checks, shown by `manage.py check` (which in this project also reads the DB).

Each problem says what is wrong and what to do; none ever shows a key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DatabaseError

from lib.outbound import EnvironmentProxies

from .crypto import Keyring
from .validators import validate_base_url


@checks.register("llmcp")
def check_keyring(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        keyring = Keyring.parse(settings.ENCRYPTION_KEYS)
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="providers.E001")]
    if not keyring.ids:
        return [
            checks.Error(
                "LLMCP_ENCRYPTION_KEYS is not set: provider keys cannot be stored.",
                hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set LLMCP_ENCRYPTION_KEYS=k1:<key>.",
                id="providers.E001",
            )
        ]
    return []


@checks.register("llmcp")
def check_outbound_proxy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            problem,
            hint="Set it to http://[user:password@]host:port, or unset it to connect directly.",
            id="providers.E006",
        )
        for problem in EnvironmentProxies().problems()
    ]


@checks.register("llmcp", checks.Tags.database)
def check_providers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not databases:
        return []
    from django.db import connection

    from .models import KeyState, Provider

    try:
        if Provider._meta.db_table not in connection.introspection.table_names():
            return []  # not migrated yet (migrate itself runs these checks first)
        providers = list(Provider.objects.prefetch_related("further_keys", "breakers"))
    except DatabaseError:
        return [
            checks.Warning(
                "Cannot read providers from the database.",
                hint="Check DATABASE_URL, then run `manage.py migrate`.",
                id="providers.W001",
            )
        ]
    problems: list[checks.CheckMessage] = []
    for provider in providers:
        if provider.key_state == KeyState.NEEDS_REENTRY:
            problems.append(
                checks.Error(
                    f"The stored API key cannot be decrypted ({provider.api_key.reason}).",  # type: ignore[union-attr]
                    hint="Add the old key back to LLMCP_ENCRYPTION_KEYS, or re-enter the "
                    f"provider key: `manage.py provider_set_key {provider.type}`.",
                    obj=provider,
                    id="providers.E002",
                )
            )
        elif provider.central_key_enabled and provider.key_state == KeyState.NOT_SET:
            problems.append(
                checks.Error(
                    "The central API key is on but no key is stored.",
                    hint=f"Set one with `manage.py provider_set_key {provider.type}` "
                    "or turn the central key off.",
                    obj=provider,
                    id="providers.E003",
                )
            )
        for key in provider.central_keys():
            if key.key_attention:
                problems.append(
                    checks.Warning(
                        f"The central key {key.key_label!r} needs attention: {key.key_attention}",
                        hint="Calls skip it while other keys work. Replace it with "
                        f"`manage.py provider_key_remove {provider.type} {key.key_label!r}` and "
                        f"`provider_key_add`, or, once it is fixed at the provider, press "
                        "“Mark as fixed” on the Providers tab.",
                        obj=provider,
                        id="providers.W003",
                    )
                )
        for breaker in provider.breakers.all():
            if breaker.open_until is not None:
                problems.append(
                    checks.Warning(
                        f"Calls to {breaker.model_identifier} are paused: the provider failed "
                        f"{breaker.failures} time(s) (last: {breaker.last_error}).",
                        hint="The AI Gateway tries again by itself once the pause is over "
                        "(AI_GATEWAY_BREAKER_OPEN_SECONDS); look at the provider's status page.",
                        obj=provider,
                        id="providers.W004",
                    )
                )
        if not provider.base_url and provider.spec.base_url_required:
            problems.append(
                checks.Error(
                    "A base URL is required and none is set.",
                    hint=f"`manage.py provider_set {provider.type} --base-url URL`.",
                    obj=provider,
                    id="providers.E004",
                )
            )
        elif provider.base_url:
            try:
                validate_base_url(provider.base_url)
            except ValidationError as error:
                problems.append(
                    checks.Error(
                        f"Base URL refused: {' '.join(error.messages)}",
                        obj=provider,
                        id="providers.E005",
                    )
                )
    problems.extend(_undecryptable_elsewhere())
    return problems


def _undecryptable_elsewhere() -> list[checks.CheckMessage]:
    """Other encrypted keys (users' own keys) that the keyring cannot decrypt, counted."""
    from .models import Provider
    from .rotation import encrypted_fields

    found: list[checks.CheckMessage] = []
    for model, field in encrypted_fields():
        if model is Provider:
            continue
        broken = sum(
            1
            for value in model._default_manager.values_list(field, flat=True)
            if value is not None and value.needs_reentry
        )
        if broken:
            found.append(
                checks.Warning(
                    f"{broken} {model._meta.verbose_name_plural} cannot be decrypted with the "
                    "current keyring; their owners must save them again.",
                    hint="Add the old key back to LLMCP_ENCRYPTION_KEYS if you still have it.",
                    id="providers.W002",
                )
            )
    return found
