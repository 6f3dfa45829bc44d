"""A model's options under the names each provider API uses in a request body.

Each provider type's registry entry names one of these mappers; an option an API has no
parameter for is left out rather than sent under a guessed name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Options = Mapping[str, Any]


def _renamed(general: Options, names: Mapping[str, str]) -> dict[str, Any]:
    return {api: general[ours] for ours, api in names.items() if general.get(ours) is not None}


def anthropic_options(general: Options, options: Options) -> dict[str, Any]:
    body = _renamed(
        general,
        {
            "max_output_tokens": "max_tokens",
            "temperature": "temperature",
            "top_p": "top_p",
            "top_k": "top_k",
        },
    )
    if options.get("thinking_budget_tokens") is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": options["thinking_budget_tokens"]}
    if options.get("effort") is not None:
        body["output_config"] = {"effort": options["effort"]}
    return body


OPENAI_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def openai_options(general: Options, options: Options) -> dict[str, Any]:
    body = _renamed(general, {"max_output_tokens": "max_completion_tokens", **OPENAI_SAMPLING})
    if options.get("max_completion_tokens") is not None:
        body["max_completion_tokens"] = options["max_completion_tokens"]
    for name in ("reasoning_effort", "parallel_tool_calls"):
        if options.get(name) is not None:
            body[name] = options[name]
    return body


def openai_compatible_options(general: Options, options: Options) -> dict[str, Any]:
    # Self-hosted servers (vLLM, llama.cpp, LiteLLM) all take max_tokens.
    return _renamed(general, {"max_output_tokens": "max_tokens", **OPENAI_SAMPLING})


def _reasoning(options: Options) -> dict[str, Any]:
    reasoning = {}
    if options.get("reasoning_enabled") is not None:
        reasoning["enabled"] = options["reasoning_enabled"]
    if options.get("reasoning_effort") is not None:
        reasoning["effort"] = options["reasoning_effort"]
    return {"reasoning": reasoning} if reasoning else {}


def openrouter_options(general: Options, options: Options) -> dict[str, Any]:
    body = _renamed(
        general, {"max_output_tokens": "max_tokens", "top_k": "top_k", **OPENAI_SAMPLING}
    )
    return {**body, **_reasoning(options)}


def vercel_options(general: Options, options: Options) -> dict[str, Any]:
    body = _renamed(general, {"max_output_tokens": "max_tokens", **OPENAI_SAMPLING})
    return {**body, **_reasoning(options)}


def google_options(general: Options, options: Options) -> dict[str, Any]:
    config = _renamed(
        general,
        {
            "max_output_tokens": "maxOutputTokens",
            "temperature": "temperature",
            "top_p": "topP",
            "top_k": "topK",
            "presence_penalty": "presencePenalty",
            "frequency_penalty": "frequencyPenalty",
        },
    )
    thinking = _renamed(
        options, {"thinking_budget": "thinkingBudget", "include_thoughts": "includeThoughts"}
    )
    if thinking:
        config["thinkingConfig"] = thinking
    return {"generationConfig": config} if config else {}
