"""How long the usage pages take over a large usage table.

    .venv/bin/python bench/usage_pages.py [--rows 1000000] [--days 30]   # or: make bench-usage

Creates a database of its own on PostgreSQL (BENCH_USAGE_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/llmcp_usage_bench), fills the usage table with ``--rows``
calls spread over ``--days`` days (200 people, 30 models, 5% failed, a tenth at unknown
prices), then times, in process, the Admin dialog's Usage tab (the default 30 days, filtered
by model, by person), a developer's Settings → Usage, and `manage.py usage_report`, each the
median of five loads after one to warm up.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = os.environ.get(
    "BENCH_USAGE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/llmcp_usage_bench"
)
LOADS = 5


def environment() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        # Plain static file storage: the pages render without collectstatic.
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": DATABASE,
        "DATABASE_POOL": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "LLMCP_ENCRYPTION_KEYS": f"bench:{Fernet.generate_key().decode()}",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }


def prepare(env: dict[str, str]) -> None:
    import psycopg

    server, name = DATABASE.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


FILL = """
INSERT INTO gateway_usagerecord (
    created_at, user_id, username, provider_type, model_identifier, endpoint, streamed,
    credential_source, route, user_agent, status, error_kind, latency_ms, ttfb_ms,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd)
SELECT
    now() - (random() * %(days)s) * interval '1 day',
    CASE WHEN i %% 200 = 7 THEN %(person)s ELSE 100000 + i %% 200 END, 'person' || (i %% 200),
    (ARRAY['openai', 'anthropic', 'google'])[1 + i %% 3], 'model-' || (i %% 30),
    'chat.completions', i %% 2 = 0, 'central', 'external', 'bench',
    CASE WHEN i %% 20 = 0 THEN 502 ELSE 200 END,
    CASE WHEN i %% 20 = 0 THEN 'upstream_error' ELSE '' END,
    900, 300, 1000 + i %% 500, 200, 64, 0,
    CASE WHEN i %% 10 = 0 THEN NULL ELSE 0.004 END
FROM generate_series(1, %(rows)s) AS i
"""


def fill(rows: int, days: int, person: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"rows": rows, "days": days, "person": person})
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def timed(load) -> float:  # type: ignore[no-untyped-def]
    load()  # warm up
    times = []
    for _ in range(LOADS):
        started = time.perf_counter()
        load()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    env = environment()
    os.environ.update(env)
    print(f"Preparing {DATABASE.rsplit('/', 1)[1]}...", flush=True)
    prepare(env)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    users = get_user_model()
    admin = users.objects.create_superuser("bench-admin", "admin@example.com", "x")
    person = users.objects.create_user("person7", "p7@example.com", "x")
    print(f"Writing {args.rows:,} usage rows over {args.days} days...", flush=True)
    print(f"  {fill(args.rows, args.days, person.pk):.1f} s")
    admin_client, person_client = Client(), Client()
    admin_client.force_login(admin)
    person_client.force_login(person)
    usage, mine = reverse("usage:list"), reverse("usage:mine")

    def page(client: Client, url: str):  # type: ignore[no-untyped-def]
        def load() -> None:
            response = client.get(url)
            assert response.status_code == 200, response.status_code

        return load

    def report() -> None:
        with open(os.devnull, "w") as quiet:
            call_command("usage_report", "--by", "model", stdout=quiet)

    print("Median of five loads:")
    for label, load in [
        ("Usage tab, last 30 days", page(admin_client, usage)),
        ("Usage tab, one model", page(admin_client, f"{usage}?model=model-7")),
        ("Usage tab, one person", page(admin_client, f"{usage}?person=person7")),
        ("Settings → Usage, one person's own", page(person_client, mine)),
        ("manage.py usage_report --by model", report),
    ]:
        print(f"  {label:40} {timed(load) * 1000:8.0f} ms", flush=True)


if __name__ == "__main__":
    main()
