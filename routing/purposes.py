"""Which model a purpose uses, for one user, from data already loaded (no queries here).

- chat: the chat's model.
- title: the admin's override if usable, else the first usable small model of a short
  preferred list (the chat's provider first), else the chat's model.
- quick: as title (the caller sends temperature 0).
- advisor, subagent: the admin's override if usable, else the chat's model.
- computer use: the first usable model of a provider type that can use a computer, in the
  registry's order (Anthropic first), the chat's model first within a type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from models_catalog.models import ModelConfig, Purpose

from .availability import Availability
from .credentials import Credential, UnavailableReason
from .errors import ModelUnavailable, NoUsableModel, OverrideUnusable, RouteAction

PREFERRED_SMALL_MODELS = (
    re.compile(r"claude.*haiku"),
    re.compile(r"gpt-5(\.\d+)?-mini"),
    re.compile(r"gpt-4o-mini"),
    re.compile(r"gpt-4\.1-mini"),
    re.compile(r"gemini.*flash(?!.*image)"),
)

UNAVAILABLE_MESSAGES = {
    UnavailableReason.USER_API_KEY_REQUIRED: (
        "{model} needs your personal {provider} API key. Add it in Settings → API Keys.",
        RouteAction.ADD_PERSONAL_KEY,
    ),
    UnavailableReason.MISSING_API_KEY: (
        "{provider} has no API key you can use, so {model} is unavailable. "
        "Contact an administrator.",
        RouteAction.CONTACT_ADMINISTRATOR,
    ),
    UnavailableReason.PROVIDER_DISABLED: (
        "{provider} is disabled on this deployment, so {model} is unavailable. "
        "Choose another model or contact an administrator.",
        RouteAction.CHOOSE_ANOTHER_MODEL,
    ),
}


def unavailable_error(
    model: ModelConfig, availability: Availability, cls: type[ModelUnavailable] = ModelUnavailable
) -> ModelUnavailable:
    """Why ``model`` is not in ``availability``, as an error a user can act on.

    Judged from ``availability`` (loaded now), not from ``model``, which may be stale.
    """
    resolution = availability.resolutions.get(model.provider_id)
    if isinstance(resolution, Credential):
        return cls(
            f"{model} is disabled or was removed. Choose another model.",
            code="model_disabled",
            action=RouteAction.CHOOSE_ANOTHER_MODEL,
        )
    reason = resolution.reason if resolution else UnavailableReason.PROVIDER_DISABLED
    template, action = UNAVAILABLE_MESSAGES[reason]
    return cls(
        template.format(model=model, provider=model.provider.label),
        code=reason.value,
        action=action,
    )


def _usable(model: ModelConfig | None, availability: Availability) -> ModelConfig | None:
    return availability.model_by_id(model.pk) if model is not None else None


def _chat_model(model: ModelConfig | None, availability: Availability) -> ModelConfig:
    if model is None:
        raise NoUsableModel(
            "No model was chosen for this chat. Pick one in the model selector.",
            action=RouteAction.CHOOSE_ANOTHER_MODEL,
        )
    usable = _usable(model, availability)
    if usable is None:
        raise unavailable_error(model, availability)
    return usable


def _small_model(chat_model: ModelConfig | None, availability: Availability) -> ModelConfig | None:
    """The chat's own provider first (same key, same policy), then any other provider."""
    models = availability.models
    same_provider = [m for m in models if chat_model and m.provider_id == chat_model.provider_id]
    for candidates in (same_provider, models):
        for pattern in PREFERRED_SMALL_MODELS:
            match = next((m for m in candidates if pattern.search(m.identifier.lower())), None)
            if match is not None:
                return match
    return None


def _computer_use_model(chat_model: ModelConfig | None, availability: Availability) -> ModelConfig:
    candidates = [m for m in availability.models if m.provider.spec.computer_use_rank is not None]
    if not candidates:
        raise NoUsableModel(
            "No model that can use a computer is available to you. Ask an administrator to "
            "add an Anthropic model.",
            code="no_computer_use_model",
            action=RouteAction.CONTACT_ADMINISTRATOR,
        )
    chat_pk = chat_model.pk if chat_model else None
    return min(
        candidates,
        key=lambda m: (m.provider.spec.computer_use_rank, m.pk != chat_pk),
    )


def choose_model(
    *,
    purpose: Purpose,
    chat_model: ModelConfig | None,
    availability: Availability,
    overrides: Mapping[str, ModelConfig],
) -> ModelConfig:
    if purpose == Purpose.CHAT:
        return _chat_model(chat_model, availability)
    if purpose == Purpose.COMPUTER_USE:
        return _computer_use_model(chat_model, availability)
    override_purpose = Purpose.TITLE if purpose == Purpose.QUICK else purpose
    override = overrides.get(override_purpose)
    usable_override = _usable(override, availability)
    if usable_override is not None:
        return usable_override
    if purpose in (Purpose.TITLE, Purpose.QUICK):
        small = _small_model(chat_model, availability)
        if small is not None:
            return small
    try:
        return _chat_model(chat_model, availability)
    except ModelUnavailable as error:
        if override is None:
            raise
        raise OverrideUnusable(
            f"The {override_purpose.label.lower()} model {override} is not available to you, "
            f"and neither is this chat's model: {error.message}",
            code=error.code,
            action=error.action,
        ) from None
