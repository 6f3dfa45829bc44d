from argparse import BooleanOptionalAction
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from models_catalog.models import ModelConfig
from models_catalog.options import GENERAL_OPTIONS
from models_catalog.services import model_save
from providers.management.commands._args import configured_provider, provider_type_arg


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Command(OperatorCommand):
    help = (
        "Create or update a model. General options have their own flags ('' unsets one); "
        "provider-specific options are given as --option name=value ('name=' unsets)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", type=provider_type_arg, help="provider type")
        parser.add_argument("identifier", help="the exact model string the provider expects")
        parser.add_argument("--display-name", help="label shown to developers")
        parser.add_argument(
            "--enabled",
            action=BooleanOptionalAction,
            default=None,
            help="enable or (--no-enabled) disable the model",
        )
        for spec in GENERAL_OPTIONS.values():
            parser.add_argument(
                _flag(spec.name), dest=spec.name, metavar="VALUE", help=f"{spec.help}"
            )
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="provider-specific option (repeatable)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        provider = configured_provider(opts["provider"])
        model = ModelConfig.objects.filter(provider=provider, identifier=opts["identifier"]).first()
        fields: dict[str, Any] = {}
        # Names are stripped as the web form strips them, so "   " is refused as blank.
        display_name = opts["display_name"].strip() if opts["display_name"] is not None else None
        if model is None:
            fields["identifier"] = opts["identifier"]
            fields["display_name"] = opts["identifier"] if display_name is None else display_name
        elif display_name is not None:
            fields["display_name"] = display_name
        if opts["enabled"] is not None:
            fields["enabled"] = opts["enabled"]
        errors: dict[str, list[str]] = {}
        for name, spec in GENERAL_OPTIONS.items():
            raw = opts[name]
            if raw is None:
                continue
            try:
                fields[name] = None if raw.strip() == "" else spec.clean(raw)
            except ValidationError as error:
                errors[_flag(name)] = error.messages
        options = dict(model.options) if model else {}
        for item in opts["option"]:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                errors.setdefault("--option", []).append(f"expected NAME=VALUE, got {item!r}")
                continue
            options.pop(name.strip(), None) if value == "" else options.update(
                {name.strip(): value}
            )
        if errors:
            raise CommandError(validation_line(ValidationError(errors)))
        try:
            saved, moved = model_save(
                model=model, provider=provider, fields=fields, options=options, actor=None
            )
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(
            f"{saved.provider.label} / {saved.identifier}: "
            f"{'created' if model is None else 'saved'}."
        )
        if moved is not None:
            self.stdout.write(moved.message())
