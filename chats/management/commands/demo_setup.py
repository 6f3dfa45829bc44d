from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from lib.commands import OperatorCommand, validation_line
from models_catalog.models import ModelConfig
from models_catalog.services import model_save, model_set_default
from providers.services import provider_save


class Command(OperatorCommand):
    help = (
        "Configure the local fake provider (manage.py fake_provider) as an OpenAI Compatible "
        "provider with two models and a default, so chats work without any real key. Safe to "
        "run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--port",
            type=int,
            default=9999,
            help="the port `manage.py fake_provider --port` serves on, on this machine "
            "(default 9999)",
        )
        where.add_argument(
            "--url", help="the fake provider's OpenAI API root, when it runs elsewhere"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535")
        options["url"] = options["url"] or f"http://127.0.0.1:{options['port']}/v1"
        try:
            provider = provider_save(
                provider_type="openai-compatible",
                actor=None,
                changes={"base_url": options["url"], "enabled": True},
                api_key="sk-demo-fake-provider",
            )
            models = {}
            for identifier, name, price in (
                ("fake-gpt", "Fake GPT (demo)", ("3", "15")),
                ("fake-gpt-mini", "Fake GPT mini (demo)", ("0.25", "2")),
            ):
                existing = ModelConfig.objects.filter(provider=provider, identifier=identifier)
                models[identifier], _ = model_save(
                    model=existing.first(),
                    provider=provider,
                    fields={
                        "identifier": identifier,
                        "display_name": name,
                        "context_limit": 128_000,
                        "input_price": price[0],
                        "output_price": price[1],
                        "enabled": True,
                    },
                    options={},
                    actor=None,
                )
            model_set_default(model=models["fake-gpt"], actor=None)
        except ValidationError as error:
            raise CommandError(validation_line(error)) from None
        self.stdout.write(
            f"Demo ready: OpenAI Compatible at {options['url']} with Fake GPT (default) and "
            "Fake GPT mini.\n"
            f"Now start the fake provider (it stays in the foreground): manage.py "
            f"fake_provider --port {options['port']}\n"
            "Then open the Agents page. To watch a reply stream slowly (and try queueing and "
            "Stop), put [[fake: chunk-delay=0.5; chunks=40]] in a message."
        )
