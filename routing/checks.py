"""`manage.py check` warns about a default model people cannot start on."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError, connection


@checks.register("llmcp", checks.Tags.database)
def check_default_model(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    if not databases:
        return []
    from models_catalog.models import ModelConfig

    from .reach import default_model_warnings

    try:
        if ModelConfig._meta.db_table not in connection.introspection.table_names():
            return []
        warnings = default_model_warnings()
    except DatabaseError:
        return []  # providers.W001 already says the database cannot be read
    return [
        checks.Warning(text, hint="Open Admin → Models.", id="routing.W001") for text in warnings
    ]
