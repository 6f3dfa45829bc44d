"""The first-run checklist an admin sees until the deployment is usable: add a provider, add a
model, star a default, invite developers. At most four cheap queries; shown only to admins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.urls import reverse

from accounts.models import Invitation
from models_catalog.models import ModelConfig
from providers.models import Provider, ProviderStatus


@dataclass(frozen=True)
class Step:
    title: str
    hint: str
    url: str
    link_text: str
    done: bool


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps)


def setup_checklist(
    providers: Iterable[Provider] | None = None, active_people: int | None = None
) -> Checklist:
    """Pass what the page has loaded already (providers, people counted) to save queries."""
    if providers is None:
        providers = Provider.objects.all()
    has_provider = any(p.status == ProviderStatus.CONFIGURED for p in providers)
    models = ModelConfig.objects.usable().aggregate(
        usable=Count("pk"), starred=Count("pk", filter=Q(is_default=True))
    )
    if active_people is None:
        active_people = get_user_model()._default_manager.filter(is_active=True).count()
    invited = active_people > 1 or Invitation.objects.exists()
    has_model, has_default = models["usable"] > 0, models["starred"] > 0
    return Checklist(
        (
            Step(
                "Add a provider",
                "Enter an API key for Anthropic, OpenAI, Google or another provider, and choose "
                "who may use it.",
                reverse("providers:list"),
                "Open Providers",
                has_provider,
            ),
            Step(
                "Add a model",
                "Add models by hand, or use “Discover models” on a provider card to add several "
                "at once.",
                reverse("models:add") if has_provider else reverse("models:list"),
                "Add a model",
                has_model,
            ),
            Step(
                "Star a default model",
                "The starred model is preselected when developers start a new chat.",
                reverse("models:list"),
                "Open Models",
                has_default,
            ),
            Step(
                "Invite developers",
                "Send invitation links, or connect single sign-on.",
                reverse("accounts:people"),
                "Open People",
                invited,
            ),
        )
    )
