"""Shared pieces for the property-based tests: what a user (or an attacker) might type."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "²",
    "①",
    "٣",
    "9" * 5000,
    "-1",
    "1e999999",
    "-1e-999999",
    "nan",
    "inf",
    "0x10",
    "\u202eevil",
    "\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "😀",
    "sk-" + "k" * 20_000,
]

texts = st.one_of(st.text(max_size=200), st.sampled_from(NASTY))
numbers_as_text = st.one_of(
    texts,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
raw_bytes = st.one_of(
    st.binary(max_size=300), texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
)

property_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def rolled_back() -> Any:
    """Each example starts from the same database: its writes are undone afterwards."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def run_command(*args: str, stdin: bytes = b"") -> tuple[str, str] | CommandError:
    """A command's (stdout, stderr), or the CommandError it reported in one line."""
    out, err = io.StringIO(), io.StringIO()
    previous = sys.stdin
    sys.stdin = _Stdin(io.BytesIO(stdin), encoding="utf-8")
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as error:
        assert "\n" not in str(error), str(error)
        assert "Traceback" not in str(error)
        return error
    finally:
        sys.stdin = previous
    return out.getvalue(), err.getvalue()


def assert_all_valid(queryset: Any, check: Callable[[Any], None] | None = None) -> None:
    """Whatever got saved passes the model's own validation."""
    for obj in queryset:
        obj.full_clean()
        if check is not None:
            check(obj)
