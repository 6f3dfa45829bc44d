from typing import Any

from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand
from lib.users import user_by_username
from models_catalog.models import ModelConfig, Purpose
from routing.errors import RouteError
from routing.routes import ModelRequest, build_route
from tokens.management.commands._lookup import find_token
from tokens.models import ApiToken


def find_model_by_text(text: str) -> ModelConfig:
    """``provider/identifier`` or a bare identifier (when only one provider has it)."""
    models = ModelConfig.objects.with_provider()
    provider, sep, identifier = text.partition("/")
    matches = list(models.filter(provider__type=provider, identifier=identifier)) if sep else []
    if not matches:
        matches = list(models.filter(identifier=text))
    if len(matches) > 1:
        providers = ", ".join(m.provider.type for m in matches)
        raise CommandError(
            f"{text!r} is configured for several providers ({providers}); "
            "write it as PROVIDER/IDENTIFIER"
        )
    if not matches:
        raise CommandError(f"no model {text!r} (see models_list)")
    return matches[0]


class Command(OperatorCommand):
    help = (
        "Show the route a model call would take for a user (path, base URL, credential source, "
        "header names with values hidden, request options), or the error it would get."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("model", help="PROVIDER/IDENTIFIER, or an identifier")
        parser.add_argument(
            "--purpose", choices=Purpose.values, default=Purpose.CHAT.value, help="default: chat"
        )
        parser.add_argument(
            "--token",
            help="the initiating token's id or prefix (default: the user's most recently "
            "used active token)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_username(options["username"])
        model = find_model_by_text(options["model"])
        token: ApiToken | None
        if options["token"]:
            token = find_token(options["token"])
        else:
            token = (
                ApiToken.objects.for_user(user).active().order_by("-last_used_at", "-pk").first()
            )
        request = ModelRequest(
            user=user,
            model=model,
            purpose=Purpose(options["purpose"]),
            api_key_id=token.pk if token else None,
        )
        try:
            route = build_route(request)
        except RouteError as error:
            if options["json"]:
                self.write_json(
                    {
                        "error": {
                            "code": error.code,
                            "action": error.action,
                            "message": error.message,
                        }
                    }
                )
                raise SystemExit(1) from None
            raise CommandError(f"{error.code}: {error.message}") from None
        explained = route.explain()
        if options["json"]:
            self.write_json(explained)
            return
        if token is not None and route.identity is not None:
            self.stdout.write(f"token:             {token.display_prefix} ({token.name})")
        for name in ("path", "purpose", "provider", "model", "base_url", "credential_source"):
            self.stdout.write(f"{name + ':':<19}{explained[name]}")
        self.stdout.write("headers:")
        for name, value in explained["headers"].items():
            self.stdout.write(f"  {name}: {value}")
        self.stdout.write("options:" + ("" if explained["options"] else " (none)"))
        for name, value in explained["options"].items():
            self.stdout.write(f"  {name}: {value}")
