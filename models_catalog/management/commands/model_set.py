from argparse import BooleanOptionalAction
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from lib.commands import OperatorCommand, validation_line
from models_catalog.models import ModelConfig
from models_catalog.options import GENERAL_OPTIONS
from models_catalog.services import model_fallbacks_set, model_save
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
        parser.add_argument(
            "--fallback",
            action="append",
            default=None,
            metavar="PROVIDER/MODEL",
            help="a fallback model, e.g. aws-bedrock/anthropic.claude-opus-4-6-v1:0 (repeatable, "
            "in order; replaces the model's fallbacks)",
        )
        parser.add_argument(
            "--no-fallbacks", action="store_true", help="remove the model's fallbacks"
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
        fallbacks = _fallbacks(opts, errors)
        if errors:
            raise CommandError(validation_line(ValidationError(errors)))
        try:
            with transaction.atomic():
                saved, moved = model_save(
                    model=model, provider=provider, fields=fields, options=options, actor=None
                )
                if fallbacks is not None:
                    model_fallbacks_set(model=saved, fallbacks=fallbacks, actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(
            f"{saved.provider.label} / {saved.identifier}: "
            f"{'created' if model is None else 'saved'}."
        )
        if moved is not None:
            self.stdout.write(moved.message())
        if fallbacks is not None:
            named = ", ".join(f"{fb.provider.type}/{fb.identifier}" for fb in fallbacks)
            self.stdout.write(f"Fallbacks: {named or 'none'}.")


def _fallbacks(opts: dict[str, Any], errors: dict[str, list[str]]) -> list[ModelConfig] | None:
    """The models --fallback names, in order; None when neither option was given."""
    if opts["no_fallbacks"]:
        if opts["fallback"]:
            errors["--fallback"] = ["give --fallback or --no-fallbacks, not both"]
        return []
    if opts["fallback"] is None:
        return None
    found = []
    for named in opts["fallback"]:
        provider_type, sep, identifier = named.partition("/")
        model = (
            ModelConfig.objects.with_provider()
            .filter(provider__type=provider_type.strip(), identifier=identifier.strip())
            .first()
            if sep
            else None
        )
        if model is None:
            errors.setdefault("--fallback", []).append(
                f"no model {named!r} (PROVIDER/MODEL, as models_list shows them)"
            )
        else:
            found.append(model)
    return found
