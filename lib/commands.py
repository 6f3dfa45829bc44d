"""A base for operators' commands: one line on stderr and a non-zero exit for bad input."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.validators import validate_api_key


class _OneLineParser(CommandParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            # Never echo them: one may be a key typed where it does not belong.
            message = (
                "unrecognized arguments (not shown, in case one is a key; keys are read "
                "from standard input or --key-file)"
            )
        if getattr(self, "called_from_command_line", False):
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
        raise CommandError(f"Error: {message}")


class OperatorCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        # No abbreviations: "--key SECRET" must not be taken for "--key-file SECRET".
        kwargs.setdefault("allow_abbrev", False)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # BaseCommand builds a CommandParser itself; narrowing its class keeps all of Django's
        # setup and changes only how an argument error is printed (one line, not the usage).
        parser.__class__ = _OneLineParser
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        # The database cannot store or compare a NUL byte; say so rather than crash on it.
        values = [*args, *options.values()]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise CommandError("arguments cannot contain a NUL byte")
        try:
            return super().execute(*args, **options)
        except CommandError as error:
            message = str(error)
            if message.isprintable():
                raise
            # An error may quote what was typed (an option's name): still one line.
            raise CommandError(one_line(message), returncode=error.returncode) from None

    def write_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str))

    def write_table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            self.stdout.write(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )


def one_line(text: str) -> str:
    """``text`` with every line break and other control character escaped (``\\r``,
    ``\\x85``, ``\\u2028``), so it prints as one line."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def validation_line(error: ValidationError) -> str:
    """All messages of a ValidationError on one line, prefixed by their field names."""
    if hasattr(error, "error_dict"):
        parts: list[str] = []
        for field, messages in error.message_dict.items():
            label = "" if field == "__all__" else f"{field}: "
            parts.extend(f"{label}{message}" for message in messages)
        return "; ".join(parts)
    return "; ".join(error.messages)


def add_secret_arguments(parser: CommandParser, *, what: str = "key") -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--key-stdin",
        action="store_true",
        help=f"read the {what} from standard input (what happens without --key-file too; "
        "the flag is taken, as provider_set needs it)",
    )
    source.add_argument(
        "--key-file",
        type=Path,
        help=f"read the {what} from this file (default: standard input). Never pass it as an "
        "argument: arguments end up in shell history and process lists.",
    )


def read_secret(key_file: Path | None, *, stdin: Any = None) -> str:
    """Read a key from a file or stdin, dropping one trailing line break only.

    Bytes are decoded strictly: a key that is not text (or not ASCII) is refused in one line
    that never shows it.
    """
    stdin = stdin or sys.stdin
    if key_file is not None:
        try:
            data: bytes | str = key_file.read_bytes()
        except OSError as error:
            # The path is not repeated: a key pasted in its place must not be printed.
            raise CommandError(
                f"cannot read the file given to --key-file: {error.strerror}"
            ) from None
    elif stdin.isatty():
        data = getpass.getpass("API key (input hidden): ")
    else:
        buffer = getattr(stdin, "buffer", None)
        data = buffer.read() if buffer is not None else stdin.read()
    if isinstance(data, bytes):
        try:
            raw = data.decode("ascii")
        except UnicodeDecodeError:
            raise CommandError(
                "the key is not printable ASCII (letters, digits and punctuation without "
                "spaces); copy it again from the provider's console"
            ) from None
    else:
        raw = data
    if raw.endswith("\r\n"):
        raw = raw[:-2]
    elif raw.endswith("\n"):
        raw = raw[:-1]
    if not raw:
        raise CommandError("no key given: pipe it on standard input or use --key-file")
    try:
        validate_api_key(raw)
    except ValidationError as error:
        raise CommandError(f"key refused: {' '.join(error.messages)}") from None
    return raw
