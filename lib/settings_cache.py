"""Settings read on every gateway call, as plain attributes.

Each read of ``django.conf.settings.X`` runs Python code (the lazy settings object checks
every attribute read in a Python ``__getattribute__``). On the gateway's hot path a handful
of such reads cost a few microseconds per call once the CPU caches are cold.
``cached_settings.X`` reads the setting once, then costs a plain attribute lookup.

Settings do not change while a server runs. Tests change them through Django's
``setting_changed`` signal (``override_settings``, pytest-django's ``settings`` fixture),
which forgets every cached value.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class _CachedSettings:
    def __getattr__(self, name: str) -> Any:
        # Only called for a name not read since the last change.
        value = getattr(settings, name)
        self.__dict__[name] = value
        return value

    def forget(self) -> None:
        self.__dict__.clear()


cached_settings = _CachedSettings()


@receiver(setting_changed)
def _forget_cached_settings(**kwargs: Any) -> None:
    cached_settings.forget()
