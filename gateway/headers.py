"""Which headers cross the gateway, in one place: what a caller's request may take to the
provider, and what a provider's answer may bring back.

Requests: everything but hop-by-hop headers, every credential header (the right one is added
back), cookies, forwarding headers and the platform's own (``x-coder-*``); on a central-key
call also the billing headers that would move the call to another account.

Answers: only what a caller needs, an allow-list (a deny-list cannot keep up with what
upstreams and proxies in front of them add: ``x-litellm-model-api-base`` names an internal
URL, ``llm_provider-openai-organization`` the account behind the central key):

- ``content-type``;
- request ids, which the SDKs report and support asks for (``x-request-id``, Anthropic's
  ``request-id``, Azure's ``apim-request-id``, Bedrock's ``x-amzn-requestid``);
- retry advice the SDKs act on (``retry-after``, ``retry-after-ms``, ``x-should-retry``);
- the provider's rate-limit headers (``x-ratelimit-*``, ``anthropic-ratelimit-*``), which
  SDKs and coding agents read to back off or show what is left;
- Gemini's served tier (``x-gemini-service-tier``) and ``cache-control``;
- on a call with the caller's own key, the account it belongs to (``openai-organization``,
  ``openai-project``, ``anthropic-organization-id``): theirs, not the deployment's.

Each value passed back is scrubbed of the key sent upstream.
"""

from __future__ import annotations

from lib.scrub import Scrubber

DROPPED_REQUEST_HEADERS = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
        b"proxy-authorization",
        b"proxy-connection",
        b"cookie",
        b"authorization",
        b"x-api-key",
        b"x-goog-api-key",
        b"api-key",
        b"forwarded",
        b"x-real-ip",
        b"accept-encoding",
        b"content-encoding",  # the body goes upstream decoded
    }
)
DROPPED_REQUEST_PREFIXES = (b"x-coder-", b"x-forwarded-")
# Billing headers that would move a central-key call to another account.
CENTRAL_ONLY_DROPPED = frozenset({b"openai-organization", b"openai-project"})

PASSED_BACK = frozenset(
    {
        b"content-type",
        b"cache-control",
        b"x-request-id",
        b"request-id",
        b"apim-request-id",
        b"x-amzn-requestid",
        b"retry-after",
        b"retry-after-ms",
        b"x-should-retry",
        b"x-gemini-service-tier",
    }
)
PASSED_BACK_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
# The account behind the key: passed back only when the key is the caller's own.
OWN_ACCOUNT = frozenset({b"openai-organization", b"openai-project", b"anthropic-organization-id"})


def passed_back(
    headers: list[tuple[bytes, bytes]], *, own_key: bool, scrubber: Scrubber
) -> list[tuple[bytes, bytes]]:
    """The answer's headers a caller gets (names in lower case, as ``lib.http1`` gives
    them), values scrubbed of the key."""
    allowed = _OWN_KEY_ALLOWS if own_key else _ALLOWS
    kept = []
    suspect = False
    for header in headers:
        passed = allowed.get(header[0])
        if passed is None:
            passed = _remember(allowed, header[0], own_key)
        if passed:
            kept.append(header)
            suspect = suspect or scrubber.suspects(header[1])
    if suspect:  # a trace of the key in some value (there almost never is)
        return [(name, scrubber.clean(value)) for name, value in kept]
    return kept


# Whether a header name is passed back, for calls with the central key and with the caller's
# own: remembered as they come (the same few names come with every answer), at most a few
# hundred (the names are an upstream's to choose).
_ALLOWS: dict[bytes, bool] = {}
_OWN_KEY_ALLOWS: dict[bytes, bool] = {}
_REMEMBERED = 512


def _remember(allowed: dict[bytes, bool], name: bytes, own_key: bool) -> bool:
    decision = (
        name in PASSED_BACK
        or name.startswith(PASSED_BACK_PREFIXES)
        or (own_key and name in OWN_ACCOUNT)
    )
    if len(allowed) < _REMEMBERED:
        allowed[name] = decision
    return decision
