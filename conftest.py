"""Standing users and factories shared by the whole suite."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from models_catalog.models import ModelConfig
from models_catalog.services import model_save
from providers.models import Provider
from providers.services import KEY_UNCHANGED, provider_save

PASSWORD = "correct-horse-battery"

# Property tests check behaviour, not speed (the benchmarks measure speed): on a busy CI
# machine a slow example, or Hypothesis building its Unicode tables on a fresh clone, is
# not a failure.
hypothesis_settings.register_profile(
    "project", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("project")

# The suite talks to servers on loopback: a proxy set in the developer's shell must not
# reroute those calls (the proxy tests set their own variables).
for _name in ("https_proxy", "http_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


@pytest.fixture
def admin_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(
        "alice", password=PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def developer(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("dev", password=PASSWORD)


@pytest.fixture
def other_developer(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("stranger", password=PASSWORD)


@pytest.fixture
def staff_client(client: Any, admin_user: User) -> Any:
    client.force_login(admin_user)
    return client


@pytest.fixture
def developer_client(client: Any, developer: User) -> Any:
    client.force_login(developer)
    return client


@pytest.fixture
def make_provider(db: None) -> Callable[..., Provider]:
    """Create a provider through the same service the UI uses."""

    def make(
        provider_type: str = "anthropic",
        api_key: str | object | None = "sk-test-central-key",
        actor: Any = None,
        **changes: Any,
    ) -> Provider:
        if api_key is None:
            api_key = KEY_UNCHANGED
            changes.setdefault("central_key_enabled", False)
            changes.setdefault("user_keys_allowed", True)
        if provider_type in ("azure-openai", "openai-compatible"):
            changes.setdefault("base_url", "https://llm.internal.example/v1")
        if provider_type == "aws-bedrock":
            changes.setdefault("region", "us-east-1")
        return provider_save(
            provider_type=provider_type, actor=actor, changes=changes, api_key=api_key
        )

    return make


@pytest.fixture
def make_model(make_provider: Callable[..., Provider]) -> Callable[..., ModelConfig]:
    """Create a model through the service, creating its provider on first use."""

    def make(
        identifier: str = "claude-sonnet-4-5",
        provider_type: str = "anthropic",
        options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> ModelConfig:
        provider = Provider.objects.filter(type=provider_type).first() or make_provider(
            provider_type
        )
        fields.setdefault("display_name", identifier.replace("-", " ").title())
        fields.setdefault("context_limit", 200_000)
        model, _ = model_save(
            model=None,
            provider=provider,
            fields={"identifier": identifier, **fields},
            options=options or {},
            actor=None,
        )
        return model

    return make


@pytest.fixture
def save_user_key(db: None) -> Callable[..., Any]:
    """Save a user's personal key through the service the API Keys page uses."""
    from userkeys.services import user_key_save

    def save(user: User, provider: Provider, raw_key: str = "sk-user-own-key") -> Any:
        return user_key_save(user=user, provider=provider, raw_key=raw_key, actor=user)

    return save


class _PipedStdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def piped_stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str | bytes], None]:
    """Feed a command's standard input as a pipe would (no terminal): text or raw bytes."""

    def feed(data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        monkeypatch.setattr(sys, "stdin", _PipedStdin(io.BytesIO(raw), encoding="utf-8"))

    return feed


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.postgres` tests need PostgreSQL; CI (REQUIRE_POSTGRES_TESTS) never skips.
    `@pytest.mark.sqlite` tests need the embedded database; CI runs them in a second pass."""
    from django.db import connection

    if item.get_closest_marker("postgres") is not None and connection.vendor != "postgresql":
        message = "needs PostgreSQL: run with DATABASE_URL=postgres://… (as .ci/run does)"
        if os.environ.get("REQUIRE_POSTGRES_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    if item.get_closest_marker("sqlite") is not None and connection.vendor != "sqlite":
        pytest.skip("needs the embedded SQLite database: run without DATABASE_URL")


@pytest.fixture(scope="session", autouse=True)
def _nothing_left_from_an_earlier_run(django_db_setup: None, django_db_blocker: Any) -> None:
    """With --reuse-db a test database outlives its run: rows a server wrote after a test's
    cleanup, or a run stopped halfway, would still be there for the next run's counts."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        _cleanups_restore_the_rows_migrations_made()


def _cleanups_restore_the_rows_migrations_made() -> None:
    """A transactional test's cleanup (Django's flush) empties every table, then re-runs
    every app's post-migrate handlers to make the content types and permissions again, about
    a hundred queries; on PostgreSQL it empties the tables with TRUNCATE, which makes new
    files for each. Together ~0.28 s a test here, more than most tests. The rows those
    handlers make are the same every time: they are kept once, and put back in two inserts;
    and on PostgreSQL the tables are emptied with DELETE (their foreign keys are checked at
    commit, so the order does not matter): ~0.03 s. What a test sees is unchanged."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.core.management.commands import flush
    from django.db import connection

    kinds = [ContentType(**row) for row in ContentType.objects.values()]
    permissions = [Permission(**row) for row in Permission.objects.values()]

    def restore(verbosity: int, interactive: bool, db: str, **kwargs: Any) -> None:
        ContentType.objects.using(db).bulk_create(kinds)
        Permission.objects.using(db).bulk_create(permissions)
        ContentType.objects.clear_cache()

    flush.emit_post_migrate_signal = restore  # type: ignore[attr-defined]
    if connection.vendor == "postgresql":

        def sql_flush(style: Any, connection: Any, **kwargs: Any) -> list[str]:
            tables = connection.introspection.django_table_names(only_existing=True)
            quote = connection.ops.quote_name
            deletes = [f"DELETE FROM {quote(t)}" for t in tables]  # noqa: S608 (table names)
            return ["SET CONSTRAINTS ALL DEFERRED", *deletes]

        flush.sql_flush = sql_flush  # type: ignore[attr-defined]
