"""What the README and the reference pages in docs/ name exists: every `manage.py` command,
every variable of their configuration tables (read by this project, or by the library the
page says honours it) and every page address. A renamed command, setting or URL fails here
before a reader meets it."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Variables that a library reads itself, not this project's code.
READ_BY_LIBRARIES = {
    "HTTP_PROXY": "urllib.request.getproxies_environment (lib.outbound)",
}
# Addresses named as provider paths, not pages of this server.
NOT_OURS = {"/v1", "/v1beta", "/key", "/credits", "/foundation-models", "/fast"}


@cache
def texts() -> dict[str, str]:
    return {path.name: path.read_text() for path in PAGES}


def table_variables(text: str) -> set[str]:
    """The variables in the first column of tables whose first header names variables."""
    names: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        first = line.strip("|").split("|")[0]
        if "variable" in first:
            in_table = True
        elif in_table:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


@cache
def project_code() -> str:
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return "".join((ROOT / name).read_text() for name in files if (ROOT / name).exists())


def test_every_command_the_docs_name_exists():
    commands = get_commands()
    named = {
        (page, command)
        for page, text in texts().items()
        for command in re.findall(r"manage\.py ([a-z_]+)", text)
    }
    assert len(named) > 40
    assert [(page, c) for page, c in sorted(named) if c not in commands] == []


def test_every_variable_of_the_configuration_tables_is_read():
    named = {(page, name) for page, text in texts().items() for name in table_variables(text)}
    assert len(named) > 40
    code = project_code()
    unread = [
        (page, name)
        for page, name in sorted(named)
        if f'"{name}"' not in code and name not in READ_BY_LIBRARIES
    ]
    assert unread == []


@pytest.mark.django_db
def test_every_address_the_docs_name_is_served():
    named = {
        (page, path)
        for page, text in texts().items()
        for path in re.findall(r"`(/[^`\s<>{}*]*)`", text)
        if path not in NOT_OURS and not path.startswith(("/usr/", "/api/v2/aibridge"))
    }
    assert len(named) >= 4
    unserved = []
    for page, path in sorted(named):
        try:
            resolve(path.split("?")[0].removesuffix("..."))
        except Resolver404:
            unserved.append((page, path))
    assert unserved == []


def test_the_docs_point_nowhere_outside_the_project():
    for page, text in texts().items():
        assert "../shared" not in text, page
