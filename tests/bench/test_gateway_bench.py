"""The gateway benchmark runs end to end (briefly): the fake provider, the gateway and both
reference lines start (anew for each latency round), every section reports, nothing errs and
every call gets its usage row, across the gateway's restarts. Whether the figures meet their
targets is for a full run on a quiet machine, not for a test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_database_url():
    """A database of the benchmark's own (it drops and creates it), dropped afterwards."""
    settings = connection.settings_dict
    user = quote(settings["USER"] or "postgres", safe="")
    if settings["PASSWORD"]:
        user += ":" + quote(settings["PASSWORD"], safe="")
    server = f"postgres://{user}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    # One per pytest worker: the benchmark drops and creates its database as it starts, so two
    # of these tests running at once on two workers must not share one.
    name = f"llmcp_bench_smoke_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_benchmark_runs_and_reports_every_part(bench_database_url):
    environment = {**os.environ, "BENCH_DATABASE_URL": bench_database_url}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    brief = ["--levels", "1,8", "--seconds", "0.3", "--rounds", "1", "--turns", "30"]
    result = subprocess.run(
        [sys.executable, "bench/gateway_bench.py", *brief, "--warm-up", "5"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: a target missed
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert re.search(r"non-stream +direct [\d.]+ ms, gateway [\d.]+ ms -> added median", out)
    for kind in ("stream, head", "stream, first event"):
        assert re.search(kind + r" +floor adds [\d.]+ ms \(rounds: [\d.]+\)", out)
        assert re.search(kind + r" +reference adds [\d.]+ ms .* against it", out)
    assert re.search(r"non-stream +reference adds [\d.]+ ms .* against it", out)
    assert out.count(", errors 0") == 9  # latency: 3 kinds x 3 lines, no errors on any
    assert "a stream's first event <= a non-stream call's" in out
    in_redis = "the Redis mode was not measured" not in out
    assert in_redis or not os.environ.get("REQUIRE_REDIS_TESTS"), "no Redis at 127.0.0.1:6379"
    for kind in ("non-stream", "stream, head", "stream, first event"):
        assert re.search(kind + r" +adds [\d.]+ ms .* against the gateway without them", out)
        same = re.search(kind + r" +adds [\d.]+ ms .* against the same gateway without them", out)
        assert bool(same) == in_redis
    assert "a budget and rate limits add <= 0.15 ms (non-stream median)" in out
    assert re.search(r"non-stream +adds [\d.]+ ms .* against one key", out)
    assert "a second central key adds <= 0.05 ms (non-stream median)" in out
    assert re.search(r"non-stream +adds [\d.]+ ms .* against the gateway with them off", out)
    assert "metrics on add <= 0.05 ms (non-stream median)" in out
    assert in_redis == ("in Redis, a budget and rate limits add <= 0.15 ms" in out)
    assert out.count(" e0") == 12  # 2 kinds x 2 levels x (direct, gateway, with limits)
    assert "[met] a usage row for every call" in out
    assert "[met] PostgreSQL connections <= pool size (4) per gateway process" in out
    rows = re.search(r"Usage rows written: (\d+) for (\d+) gateway calls", out)
    assert (
        rows
        and rows.group(1) == rows.group(2)
        and int(rows.group(2)) > (6 if in_redis else 4) * 2 * 35
    )


@pytest.mark.postgres
def test_the_instruction_count_runs_and_reports_both_servers(bench_database_url):
    """``make bench-instructions``, briefly: both servers counted under callgrind, the
    gateway above the floor, each in the hundreds of thousands a call (a count that read the
    wrong dump would be 0)."""
    import shutil

    if shutil.which("valgrind") is None:
        message = "needs valgrind: apt-get install -y valgrind (.ci/run installs it)"
        if os.environ.get("REQUIRE_POSTGRES_TESTS"):  # CI: never skipped
            pytest.fail(message)
        pytest.skip(message)
    environment = {**os.environ, "BENCH_DATABASE_URL": bench_database_url}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "bench/instructions.py",
            "--warm-up",
            "10",
            "--calls",
            "20",
            "--rounds",
            "1",  # one round proves the run; more only steady the figure (~18 s each here)
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("  gateway ") == 2  # the round, and the medians
    found = re.search(r"gateway ([\d.]+)k, floor ([\d.]+)k: this project's", result.stdout)
    assert found, result.stdout
    gateway, floor = float(found.group(1)), float(found.group(2))
    assert 100 < floor < gateway < 5_000


@pytest.mark.postgres
def test_the_usage_pages_benchmark_times_every_page(bench_database_url):
    """``make bench-usage``, briefly, on a database of its own."""
    usage_database_url = bench_database_url.replace("llmcp_bench_smoke", "llmcp_usage_smoke")
    environment = {**os.environ, "BENCH_USAGE_DATABASE_URL": usage_database_url}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        result = subprocess.run(
            [sys.executable, "bench/usage_pages.py", "--rows", "2000", "--days", "3"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        server = usage_database_url.rsplit("/", 1)[0]
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS llmcp_usage_smoke WITH (FORCE)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Writing 2,000 usage rows over 3 days" in result.stdout
    timed = re.findall(r"^  (.+?) +(\d+) ms$", result.stdout, re.M)
    assert [label for label, _ in timed] == [
        "Usage tab, last 30 days",
        "Usage tab, one model",
        "Usage tab, one person",
        "Settings → Usage, one person's own",
        "manage.py usage_report --by model",
    ]
