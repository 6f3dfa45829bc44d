from argparse import BooleanOptionalAction
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, read_secret, validation_line
from providers.services import KEY_UNCHANGED, provider_save

from ._args import provider_type_arg

FLAGS = {
    "enabled": "enabled",
    "central_key": "central_key_enabled",
    "user_keys": "user_keys_allowed",
    "fallback": "central_key_fallback",
}


class Command(OperatorCommand):
    help = (
        "Create or update a provider. Only the options given change. A key is read from "
        "standard input with --key-stdin or from --key-file, never from the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("type", type=provider_type_arg, help="provider type, e.g. anthropic")
        parser.add_argument("--base-url", help="base URL override ('' to use the default)")
        parser.add_argument("--region", help="AWS Bedrock: the endpoint's region, e.g. us-east-1")
        parser.add_argument("--enabled", action=BooleanOptionalAction, default=None)
        parser.add_argument(
            "--central-key",
            action=BooleanOptionalAction,
            default=None,
            help="use a deployment-managed key (default on)",
        )
        parser.add_argument(
            "--user-keys",
            action=BooleanOptionalAction,
            default=None,
            help="allow developers' own keys (default off)",
        )
        parser.add_argument(
            "--fallback",
            action=BooleanOptionalAction,
            default=None,
            help="fall back to the central key when a developer has none",
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--key-stdin", action="store_true", help="read the key from stdin")
        source.add_argument("--key-file", type=Path, help="read the key from this file")

    def handle(self, *args: Any, **options: Any) -> None:
        changes = {
            field: options[flag] for flag, field in FLAGS.items() if options[flag] is not None
        }
        if options["base_url"] is not None:
            changes["base_url"] = options["base_url"].strip()
        if options["region"] is not None:
            changes["region"] = options["region"].strip().lower()
        api_key: Any = KEY_UNCHANGED
        if options["key_stdin"] or options["key_file"]:
            api_key = read_secret(options["key_file"])
        try:
            provider = provider_save(
                provider_type=options["type"], actor=None, changes=changes, api_key=api_key
            )
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(
            f"{provider.label}: {provider.status.label.lower()}, "
            f"key {provider.key_state.label.lower()}"
        )
        for note in provider.side_effects:
            self.stdout.write(note)
