from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from .availability import Availability, availability_for, reason_action


def availability_json(availability: Availability, last_used: Any) -> dict[str, Any]:
    selected = availability.preselect(last_used)
    settings_url = reverse("userkeys:list")
    return {
        "grouped": availability.grouped,
        "groups": [
            {
                "provider": group.provider.type,
                "label": group.provider.label,
                "models": [
                    {
                        "id": model.pk,
                        "identifier": model.identifier,
                        "display_name": model.display_name,
                        "context_limit": model.context_limit,
                        "default": model.is_default,
                    }
                    for model in group.models
                ],
            }
            for group in availability.groups
        ],
        "default_model_id": availability.default_model.pk if availability.default_model else None,
        "selected_model_id": selected.pk if selected else None,
        "unavailable_providers": [
            {
                "provider": item.provider.type,
                "label": item.provider.label,
                "reason": item.reason.value,
                "action": reason_action(item.reason),
                "url": settings_url if item.reason.user_can_fix else None,
            }
            for item in availability.unavailable
        ],
        "message": availability.empty_message(),
    }


def available_models_api(request: HttpRequest) -> JsonResponse:
    """The selector's data for the Agents page (a session) and external tools (a platform
    token: this is one of the endpoints the access table opens to tokens, config.access)."""
    if not request.user.is_authenticated:
        return JsonResponse(
            {"error": {"code": "not_authenticated", "message": "Sign in first."}}, status=401
        )
    availability = availability_for(request.user)
    return JsonResponse(availability_json(availability, request.GET.get("last_used")))
