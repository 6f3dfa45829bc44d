"""The AI Gateway: a plain ASGI app mounted beside Django (config.asgi) at
``/api/v2/aibridge/<provider type>/v1/...``.

Per call: parse the path, authenticate the platform token, read the body (at most
AI_GATEWAY_MAX_BODY_BYTES), run one database query for token + provider + user key + model,
decide the credential with routing's truth table, strip every platform header and cookie,
inject the credential, call the provider through lib.outbound, pass the answer back (streams
chunk by chunk), and queue one usage row. Errors are answered in the caller's wire format.

Who calls:
- an outside tool, with a platform token as ``Authorization: Bearer``, ``x-api-key`` or
  ``x-goog-api-key`` (where each official SDK puts its api_key), or in
  ``X-Coder-AI-Governance-Token`` together with its own provider key (external BYOK);
- the server itself (chats), in process, with the identity in the ASGI scope
  (gateway.inprocess) and either no credential (the central key is injected here) or the
  user's key plus ``X-Coder-AI-Governance-Token: delegated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from lib import content_coding, outbound
from lib.loops import PerLoop
from lib.outage import RefusalLog
from lib.query import without_credentials
from lib.scrub import Scrubber, StreamScrubber
from lib.settings_cache import cached_settings
from lib.text import describe, unsafe_character
from providers.registry import REGISTRY, ProviderTypeSpec, WireFormat
from routing.credentials import CredentialSource, UnavailableReason, decide
from routing.deployment import DELEGATED, GATEWAY_PREFIX
from routing.routes import GatewayIdentity
from spend.holds import Settlement
from spend.services import refusal
from tokens.token_format import lookup_id_of, token_matches

from .breaker import BreakerOpen, after_call, retry_words, through_breaker
from .budgets import leases
from .fallbacks import FallBack, Fallback, falls_back_on, parse_fallbacks
from .headers import (
    CENTRAL_ONLY_DROPPED,
    DROPPED_REQUEST_HEADERS,
    DROPPED_REQUEST_PREFIXES,
    passed_back,
)
from .keys import CentralKey, Failover, central_candidates
from .load import worker
from .models import CallRoute
from .redis_counters import counters
from .restream import JsonArrayFramer, as_stream
from .store import CallRow, DatabaseUnavailable, HoldAsked, decrypt, store
from .tracing import CallTrace, call_trace
from .tracing import enabled as tracing_on
from .upstream import DIALECTS, Dialect, GarbledAnswer, GarbledStream, UnsupportedCall
from .usage import cost_of, worst_case_nano, worst_case_tokens, writer
from .wire import ADAPTERS, Match, StreamReader, Usage, WireAdapter, adapter_for_headers

logger = logging.getLogger(__name__)

# Set by gateway.inprocess only; uvicorn never puts it in a scope, config.asgi removes it.
IDENTITY_SCOPE_KEY = "llmcp.gateway.identity"
GOVERNANCE = b"x-coder-ai-governance-token"
PATH = re.compile(rf"^{re.escape(GATEWAY_PREFIX)}/([^/]+)/(v1|v1beta)(/.*)?\Z", re.DOTALL)
# A provider type's root (with or without its version), and Claude Code's /api/hello: what
# clients probe before they call.
ROOT = re.compile(
    rf"^{re.escape(GATEWAY_PREFIX)}/(?:{'|'.join(re.escape(t) for t in REGISTRY)})"
    r"(?:/v1|/v1beta|/api/hello)?/?\Z"
)


class Mode(StrEnum):
    EXTERNAL = "external"  # a platform token; the gateway resolves the credential
    EXTERNAL_BYOK = "external_byok"  # a platform token in the governance header + own key
    IN_PROCESS = "in_process"  # identity in the scope; the gateway resolves the credential
    DELEGATED = "delegated"  # identity in the scope + the user's key, marked delegated


# The calls a fallback model may take: not those that bring the caller's own key for the
# provider they named (it would not open another provider).
FALLS_BACK = (Mode.EXTERNAL, Mode.IN_PROCESS)


@dataclasses.dataclass(slots=True)
class Credentials:
    """What a call sends its provider: the key (to scrub from answers too), its headers, and
    with central keys, the way through them and the label of the first."""

    source: str
    secret: str
    headers: dict[str, str]
    failover: Failover | None = None
    key_label: str = ""


class Refused(Exception):
    """A call answered by the gateway itself, in the caller's format."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        kind: str = "not_allowed",
        headers: list[tuple[bytes, bytes]] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind
        self.headers = headers


async def application(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await Call(scope, receive, send).run()
    elif scope["type"] == "websocket":
        await refuse_websocket(scope, receive, send)


WEBSOCKET_REFUSED = (
    "This server does not take WebSocket connections: send the call over HTTP "
    "(POST, streaming with Server-Sent Events)."
)


async def refuse_websocket(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """Codex opens a WebSocket to ``responses`` before it calls over HTTP, and takes a 426
    Upgrade Required answer to its handshake as the sign to use HTTP: so that is the answer,
    in the caller's format. Without the ASGI extension for an HTTP answer the handshake is
    closed instead (the server answers 403)."""
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    try:
        adapter = _route_of("POST", scope["path"]).adapter
    except Refused:  # not a provider type's path: guess the caller from its headers
        adapter = adapter_for_headers(dict(scope["headers"]))
    body = adapter.error(426, WEBSOCKET_REFUSED, "websocket_not_supported")
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": 426, "headers": head})
    await send({"type": "websocket.http.response.body", "body": body})


class _Route(NamedTuple):
    spec: ProviderTypeSpec
    adapter: WireAdapter
    rest: str  # the path after /v1
    match: Match | None  # None: not an endpoint of this wire format


def _route_of(method: str, path: str) -> _Route:
    """What a path names (remembered for the usual short paths). Raises Refused, never
    remembered, when it names no provider type."""
    if len(path) > 300:  # never keep a caller's long path alive
        return _find_route(method, path)
    return _remembered_route(method, path)


def _find_route(method: str, path: str) -> _Route:
    found = PATH.match(path)
    if not found:
        raise Refused(404, "No such AI Gateway endpoint.", "not_found", "not_found")
    # ProviderType is a StrEnum: the path segment finds its spec as it is.
    spec = REGISTRY.get(found.group(1))  # type: ignore[call-overload,arg-type]
    if spec is None:
        raise Refused(
            404,
            f"No provider type {found.group(1)!r} at this gateway.",
            "unknown_provider_type",
            "not_found",
        )
    adapter = ADAPTERS[spec.wire_format]
    if found.group(2) not in adapter.path_versions:
        raise Refused(404, "No such AI Gateway endpoint.", "not_found", "not_found")
    rest = found.group(3) or "/"
    match = adapter.match(method, rest)
    if match is not None:
        # Endpoints match without a trailing slash; the provider gets the path it documents.
        rest = rest.rstrip("/") or "/"
    return _Route(spec, adapter, rest, match)


_remembered_route = lru_cache(maxsize=1024)(_find_route)


# The share of AI_GATEWAY_MAX_BUFFERED_BYTES that bodies still arriving, on calls whose
# platform token is not checked yet, may hold together. Past it, a call's token is checked
# before more of its body is read, so clients without a valid token cannot fill a worker's
# budget by sending bodies slowly. (A body that arrives whole is held unchecked only for the
# lookup's few milliseconds: it is not counted, and costs nothing more.)
UNCHECKED_SHARE = 4


class Call:
    # Defaults at class level: most calls never change most of them (cheaper per call).
    adapter: WireAdapter = ADAPTERS[WireFormat.OPENAI]  # set once the path names a type
    row: CallRow | None = None
    spec: ProviderTypeSpec | None = None
    model_identifier = ""
    endpoint = ""
    rest = "/"  # the path after /v1, as the provider gets it
    streamed = False
    credential_source = ""
    mode = Mode.EXTERNAL
    ttfb_ms: float | None = None
    usage = Usage()  # replaced, never changed in place
    status = 0
    error_kind = ""
    secret = ""  # the key sent upstream, to scrub from whatever comes back
    key_label = ""  # of the central key that served the call
    failover: Failover | None = None  # the call's central keys, when it has several to try
    probing = False  # the one call trying the provider again after its breaker opened
    trace: CallTrace | None = None  # its span's ids, when traces are on
    # The model's fallbacks not tried yet, (provider type, identifier): the call's own list
    # (the empty one here is never changed).
    fallbacks_left: list[tuple[str, str]] = []
    fallback_from = ""  # the model the caller asked for, when a fallback answered
    held_usd: int | None = None  # the call's worst case held on its spend budgets (nano-USD)
    asked_output: int | None = None  # the output tokens the call asked for, if it said
    lookup_id = ""  # of the platform token, once its shape is checked
    response_started = False
    held = 0  # bytes of request body this call holds
    held_unchecked = 0  # of those, held while its body arrived, before its token was checked
    served_tier: bytes | None = None  # the tier a response header named (Gemini)
    stream_finished = False  # a stream's last event was relayed to the caller
    metered = True  # the endpoint's calls reach a model (not a token count)
    array: JsonArrayFramer | None = None  # Gemini's JSON array stream, when asked for
    # (counter, amount, unit) of each budget and rate limit that counts the call: its worst
    # case held there
    hold: list[tuple[int, int, str]] | None = None

    def __init__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.started = time.perf_counter()
        self.created_at = datetime.now(UTC)
        self.headers: dict[bytes, bytes] = dict(scope["headers"])

    # -- the call ----------------------------------------------------------------------

    async def run(self) -> None:
        worker.calls_in_flight += 1
        try:
            await self._run()
        except Refused as refused:
            await self._refuse(refused)
        except DatabaseUnavailable as error:
            await self._refuse(_database_unavailable(error))
        except asyncio.CancelledError:
            # Only the server cancels a call from outside (a client that leaves is handled
            # in _forward): uvicorn, for what still runs when a graceful shutdown's time is
            # up. The caller hears it in its format; the task ends here, as asked, without
            # the traceback uvicorn would log for the cancellation.
            await self._interrupted()
        finally:
            worker.calls_in_flight -= 1
            if self.held:
                worker.bytes_held -= self.held
                worker.unchecked_bytes -= self.held_unchecked
            self._record()

    async def _run(self) -> None:
        if not cached_settings.AI_GATEWAY_ENABLED:
            raise Refused(404, "The AI Gateway is disabled on this deployment.", "disabled")
        method, path = self.scope["method"], self.scope["path"]
        if (
            method in ("HEAD", "GET")
            and ROOT.match(path)
            and (method == "HEAD" or path.rstrip("/").endswith("/api/hello"))
        ):
            await self._answer_probe()
            return
        match = self._route()
        identity, token_text, byok_key = self._credentials()
        body_raw, body = await self._read_body(token_text if identity is None else None)
        if match.endpoint.model_in != "none":
            model = match.model or (body or {}).get("model")
            # isprintable: no NUL, line break, control, bidi or other invisible character,
            # which would be stored and shown (the Usage tab, CSV) as the caller typed it.
            if (
                not isinstance(model, str)
                or not model
                or len(model) > 255
                or not model.isprintable()
            ):
                raise _bad_model(model)
            self.model_identifier = model
        if body and (stream := body.get("stream")) is not None and type(stream) is not bool:
            # OpenAI and Anthropic refuse it; a lenient OpenAI-compatible server would stream
            # while this gateway, going by the JSON true it meters by, buffered the answer
            # and never asked for the stream's usage.
            raise Refused(
                400,
                "The request's stream field must be true or false.",
                "invalid_stream",
                "bad_request",
            )
        row = await self._authenticate(identity, token_text)
        if match.endpoint.listing:
            await self._list_models(row, match.model)
            return
        if row.provider_id is not None and row.provider_enabled:
            if row.model_id is None or not row.model_enabled:
                raise await self._model_not_found(row)
            if row.model_identifier != self.model_identifier:  # an alias: its model is called
                body_raw, body = self._ask_for(row.model_identifier or "", match, body_raw, body)
        key_headers = self._use(self._credentials_for(row, byok_key, self.spec))
        if row.budgets is not None and match.endpoint.metered:
            await self._take_holds(row, body_raw, body)
        if row.fallbacks is not None and match.endpoint.metered and self.mode in FALLS_BACK:
            self.fallbacks_left = parse_fallbacks(row.fallbacks)
        # The call to the model's provider, through its breaker; on FallBack (the provider
        # failed it before its first byte, and a fallback model can take it), to that one.
        while True:
            try:
                if row.breaker_open_until is not None and match.endpoint.metered:
                    await self._through_breaker(row, len(body_raw))
                await self._forward(match, row, body_raw, body, key_headers)
                return
            except FallBack as fallback:
                row, body_raw, body, key_headers = self._switch_to(fallback, match, body_raw, body)

    async def _through_breaker(self, row: CallRow, body_size: int) -> None:
        """Past the model's breaker, or FallBack, or Refused when calls are paused."""
        try:
            self.probing = await through_breaker(row, self.model_identifier, self.created_at)
        except BreakerOpen as open_:
            if (fallback := await self._next_fallback(body_size)) is not None:
                raise FallBack(fallback, 0, "breaker_open") from None
            raise self._provider_unavailable(open_.until) from None

    def _switch_to(
        self, fallback: FallBack, match: Match, body_raw: bytes, body: dict[str, Any] | None
    ) -> tuple[CallRow, bytes, dict[str, Any] | None, dict[str, str]]:
        """The call, now to the fallback's model: the failure counted against the model it
        left (its breaker), the row, credential and body the fallback's."""
        row, to = self.row, fallback.to
        assert row is not None and self.spec is not None
        if fallback.status:
            after_call(row, self.model_identifier, fallback.status, fallback.kind, self.probing)
        logger.warning(
            "%s/%s failed the call (%s); falling back to %s/%s",
            self.spec.type,
            self.model_identifier,
            fallback.kind if not fallback.status else f"{fallback.kind}, {fallback.status}",
            to.spec.type,
            to.identifier,
        )
        self.fallback_from = self.fallback_from or f"{self.spec.type}/{self.model_identifier}"
        self.row, self.spec, self.probing = to.row, to.spec, False
        self.status, self.error_kind = 0, ""
        body_raw, body = self._ask_for(to.identifier, match, body_raw, body)
        return to.row, body_raw, body, self._use(to.credentials)

    async def _next_fallback(self, body_size: int) -> Fallback | None:
        """The next of the model's fallbacks this call may go to (its provider enabled, its
        key policy giving this person a credential, its breaker closed, its worst case within
        what the call holds of a budget); None when none is left."""
        spec, row = self.spec, self.row
        assert spec is not None and row is not None
        now = self.created_at
        while self.fallbacks_left:
            provider_type, identifier = self.fallbacks_left.pop(0)
            its_spec = REGISTRY.get(provider_type)  # type: ignore[call-overload]
            if its_spec is None or its_spec.wire_format != spec.wire_format:
                continue
            found = await store().call_row(
                provider_type=provider_type, model=identifier, token_id=row.token_id
            )
            if found is None or not found.provider_enabled or not found.model_enabled:
                continue
            if found.breaker_open_until is not None and found.breaker_open_until > now:
                continue
            try:
                credentials = self._credentials_for(found, None, its_spec)
            except Refused:
                continue
            if self.held_usd is not None and found.budgets is not None:
                worst = worst_case_nano(
                    body_size,
                    self.asked_output,
                    found.prices,
                    found.long_context,
                    found.price_factors,
                    found.context_limit,
                    found.max_output_tokens,
                )
                if worst > self.held_usd:  # a hard budget could be passed: not this one
                    continue
            return Fallback(found, its_spec, identifier, credentials)
        return None

    async def _take_holds(self, row: CallRow, body_raw: bytes, body: dict[str, Any] | None) -> None:
        """Hold the call's worst case on every budget and rate limit that counts it: from
        this process's leases when they cover it, else from the counters (one round trip);
        or refuse the call if one would be passed."""
        asked_output = self.asked_output = self.adapter.asked_output_tokens(body)
        prompt, output = worst_case_tokens(
            len(body_raw), asked_output, row.context_limit, row.max_output_tokens
        )
        amounts = {"requests": 1, "tokens": prompt + output, "calls": 1}
        if (
            self.credential_source == CredentialSource.CENTRAL
            or cached_settings.BUDGETS_COUNT_PERSONAL_KEYS
        ):
            amounts["usd"] = worst_case_nano(
                len(body_raw),
                asked_output,
                row.prices,
                row.long_context,
                row.price_factors,
                row.context_limit,
                row.max_output_tokens,
            )
            self.held_usd = amounts["usd"]
        now = self.created_at
        budgets: str = row.budgets  # type: ignore[assignment]
        held = leases()
        hold = held.take(budgets, amounts, now)
        if hold is not None:
            self.hold = hold
            return
        expires = now + timedelta(seconds=cached_settings.BUDGETS_HOLD_SECONDS)
        lent = held.lend(budgets, amounts, now)
        try:
            asked = HoldAsked(
                row.user_id, row.token_id, held.holder, amounts, now, expires, lent, budgets
            )
            if cached_settings.REDIS_URL:
                taken = await counters().reserve(asked)
            else:
                taken = await store().reserve(asked)
        except BaseException:
            held.restore(lent, now, budgets)
            raise
        if not isinstance(taken, int):
            self.hold = held.add(taken, amounts, lent)
            return
        held.restore(lent, now, budgets)
        reached = await asyncio.to_thread(refusal, taken, now)
        raise Refused(
            429,
            reached.message,
            reached.code,
            reached.code,
            self.adapter.limit_headers(reached.unit, reached.limit, reached.resets_at, now),
        )

    def _provider_unavailable(self, until: datetime) -> Refused:
        """The model's breaker is open: a 503 now, saying when it is tried again (the SDKs
        wait for retry-after and try again)."""
        at, seconds = retry_words(until, self.created_at)
        label = self.spec.label  # type: ignore[union-attr]
        return Refused(
            503,
            f"{label} is failing for {self.model_identifier}: calls to it are paused and "
            f"tried again at {at} (in {seconds} s).",
            "provider_unavailable",
            "breaker_open",
            [(b"retry-after", b"%d" % seconds)],
        )

    async def _model_not_found(self, row: CallRow) -> Refused:
        """As the provider answers a model it does not have (404: the SDKs raise their
        not-found error, and agents say the model is unknown, not that the key is bad),
        naming the models the caller can ask for instead."""
        usable = [identifier for identifier, _, _ in await store().models_of(row.provider_id or 0)]
        message = self.adapter.unknown_model(self.model_identifier)
        if usable:
            shown = ", ".join(usable[:20]) + (", ..." if len(usable) > 20 else "")
            message += f" Models you can use here: {shown}."
        else:
            message += " No model of this provider is enabled here; ask an administrator."
        return Refused(404, message, "model_not_found", "not_allowed")

    def _ask_for(
        self, identifier: str, match: Match, body_raw: bytes, body: dict[str, Any] | None
    ) -> tuple[bytes, dict[str, Any] | None]:
        """The call rewritten to name ``identifier`` (the model an alias answers with), in
        the body or, for Google, in the path."""
        if match.model is not None:  # the name in the path: asked for, or the last one called
            named = f"/models/{self.model_identifier}"
            self.rest = self.rest.replace(named, f"/models/{identifier}", 1)
        elif body is not None:
            body = {**body, "model": identifier}
            body_raw = orjson.dumps(body)
        self.model_identifier = identifier
        return body_raw, body

    def _route(self) -> Match:
        route = _route_of(self.scope["method"], self.scope["path"])
        self.spec, self.adapter, self.rest = route.spec, route.adapter, route.rest
        if route.match is None:
            raise Refused(
                404,
                f"{self.scope['method']} {self.rest} is not an endpoint of the "
                f"{route.spec.wire_format.label} API here.",
                "not_found",
                "not_found",
            )
        self.endpoint = route.match.endpoint.name
        return route.match

    def _credentials(self) -> tuple[GatewayIdentity | None, str, str | None]:
        """(in-process identity, platform token, the caller's own provider key)."""
        identity = self.scope.get(IDENTITY_SCOPE_KEY)
        governance = self.headers.get(GOVERNANCE, b"").decode("latin-1").strip()
        auth_name = self.spec.auth.name.lower().encode()  # type: ignore[union-attr]
        provider_header = self.headers.get(auth_name, b"").decode("latin-1")
        if identity is not None:
            if governance == DELEGATED:
                self.mode = Mode.DELEGATED
                return identity, "", provider_header or None
            self.mode = Mode.IN_PROCESS
            return identity, "", None
        if governance == DELEGATED:
            raise Refused(
                401,
                "A delegated call is only accepted from inside the server; "
                "send a platform token instead.",
                "delegated_outside",
                "unauthorized",
            )
        if governance:
            self.mode = Mode.EXTERNAL_BYOK if provider_header else Mode.EXTERNAL
            return None, self._token(governance), provider_header or None
        for name in (b"authorization", b"x-api-key", b"x-goog-api-key", b"api-key"):
            value = self.headers.get(name, b"").decode("latin-1").strip()
            if name == b"authorization":
                scheme, _, value = value.partition(" ")
                value = value.strip() if scheme.lower() == "bearer" else ""
            if value:
                return None, self._token(value), None
        raise Refused(
            401,
            "Send a platform token as the API key (Authorization: Bearer, "
            "x-api-key or x-goog-api-key).",
            "missing_token",
            "unauthorized",
        )

    def _token(self, value: str) -> str:
        """Refuse what cannot be a platform token before reading the body or the database;
        keep its lookup id for the query."""
        lookup_id = lookup_id_of(value)
        if lookup_id is None:
            raise _invalid_token()
        self.lookup_id = lookup_id
        return value

    async def _read_body(self, unchecked_token: str | None) -> tuple[bytes, dict[str, Any] | None]:
        """The request body, raw and parsed. ``unchecked_token``: the caller's platform
        token, not checked yet (None for in-process calls)."""
        limit = cached_settings.AI_GATEWAY_MAX_BODY_BYTES
        declared = self.headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            raise Refused(
                413,
                f"The request body is larger than {limit // (1024 * 1024)} MiB.",
                "request_too_large",
                "too_large",
            )
        codings = self._content_codings() if b"content-encoding" in self.headers else None
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise Refused(
                    499, "The client went away.", "client_disconnected", "client_disconnected"
                )
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(
                    413,
                    f"The request body is larger than {limit // (1024 * 1024)} MiB.",
                    "request_too_large",
                    "too_large",
                )
            if not message.get("more_body"):
                self._hold(len(chunk))
                chunks.append(chunk)
                break
            if unchecked_token is not None:  # more to come, maybe slowly
                unchecked_token = await self._hold_unchecked(len(chunk), unchecked_token)
            else:
                self._hold(len(chunk))
            chunks.append(chunk)
        raw = b"".join(chunks)
        if codings and raw:
            raw = await _decoded(raw, codings, limit)
            self._hold(len(raw))
        if self.scope["method"] != "POST":
            return raw, None
        try:
            body = orjson.loads(raw) if raw else None
        except ValueError:
            raise Refused(
                400, "The request body is not valid JSON.", "invalid_json", "bad_request"
            ) from None
        if not isinstance(body, dict):
            raise Refused(
                400, "The request body must be a JSON object.", "invalid_json", "bad_request"
            )
        return raw, body

    def _hold(self, size: int) -> None:
        """Count ``size`` more bytes of request body held until the call ends; 503 when the
        worker holds as much as it may already, unless all of it is this call's (a call alone
        always gets its whole body: a client is never refused for ever)."""
        if (
            worker.bytes_held + size > cached_settings.AI_GATEWAY_MAX_BUFFERED_BYTES
            and worker.bytes_held > self.held
        ):
            _overloaded_log.count()
            raise Refused(
                503,
                "The AI Gateway is holding as many requests as it may right now. "
                "Try again in a moment.",
                "overloaded",
                "overloaded",
            )
        self.held += size
        worker.bytes_held += size

    async def _hold_unchecked(self, size: int, token_text: str) -> str | None:
        """Hold ``size`` more bytes of a body still arriving on a call whose token is not
        checked yet; but first, if that passes the share such calls may hold, check the
        token (a 401 now if bad). Returns the token while it is still unchecked."""
        share = cached_settings.AI_GATEWAY_MAX_BUFFERED_BYTES // UNCHECKED_SHARE
        if worker.unchecked_bytes + size > share:
            _early_check_log.count()
            await self._authenticate(None, token_text)  # moves what it held to checked
            self.row = None  # looked up again, with the model, once the body is read
            self._hold(size)
            return None
        self._hold(size)
        self.held_unchecked += size
        worker.unchecked_bytes += size
        return token_text

    def _content_codings(self) -> list[str]:
        # A repeated header is one list (RFC 9110), so read every line of it.
        header = b",".join(v for k, v in self.scope["headers"] if k == b"content-encoding")
        try:
            return content_coding.codings_of(header)
        except content_coding.UnsupportedCoding as error:
            raise Refused(415, str(error), "unsupported_content_encoding", "bad_request") from None

    async def _authenticate(self, identity: GatewayIdentity | None, token_text: str) -> CallRow:
        provider_type = self.spec.type  # type: ignore[union-attr]
        if identity is not None:
            row = await store().call_row(
                provider_type=provider_type,
                model=self.model_identifier,
                token_id=identity.api_key_id,
            )
            if row is None or row.user_id != identity.user_id:
                raise _invalid_token()
        else:
            row = await store().call_row(
                provider_type=provider_type, model=self.model_identifier, lookup_id=self.lookup_id
            )
            if row is None or not token_matches(token_text, row.secret_hash):
                raise _invalid_token()
        if row.inactive(self.created_at):
            if not row.user_active:
                raise Refused(
                    401, "This account is deactivated.", "user_deactivated", "unauthorized"
                )
            raise _invalid_token()
        if self.held_unchecked:  # no longer unchecked
            worker.unchecked_bytes -= self.held_unchecked
            self.held_unchecked = 0
        self.row = row
        return row

    def _credentials_for(
        self, row: CallRow, byok_key: str | None, spec: ProviderTypeSpec | None
    ) -> Credentials:
        """The credential the call takes at ``row``'s provider (of type ``spec``), by its key
        policy, or Refused. Changes nothing of the call (a fallback is weighed with it)."""
        assert spec is not None
        if row.provider_id is None or not row.provider_enabled:
            raise Refused(
                403,
                f"{spec.label} is not available on this deployment. Contact an administrator.",
                "provider_disabled",
            )
        if self.mode in (Mode.DELEGATED, Mode.EXTERNAL_BYOK):
            if not row.user_keys_allowed:
                raise Refused(
                    403,
                    f"{spec.label} does not accept personal API keys on this "
                    "deployment; call without your own provider key to use the "
                    "shared one.",
                    "user_keys_not_allowed",
                )
            if not byok_key:
                raise Refused(
                    401,
                    "A delegated call must carry the user's provider key.",
                    "missing_provider_key",
                    "unauthorized",
                )
            own_key = byok_key.removeprefix(spec.auth.prefix) if spec.auth.prefix else byok_key
            return Credentials(CredentialSource.USER, own_key, spec.auth.headers_for(own_key))
        user_key = decrypt(row.user_key_ciphertext)
        central_key = decrypt(row.central_ciphertext)
        # The usual case, one central key the gateway has seen nothing wrong with, takes no
        # key list (nor a Failover: _send builds one if the provider answers an error).
        only_key = (
            row.further_keys is None
            and not row.key_attention
            and (row.key_cooling_until is None or row.key_cooling_until <= self.created_at)
        )
        keys = [] if only_key else _central_keys(row, self.created_at.timestamp())
        decision = decide(
            enabled=row.provider_enabled,
            central_key_enabled=row.central_key_enabled,
            user_keys_allowed=row.user_keys_allowed,
            central_key_fallback=row.central_key_fallback,
            central_key_usable=central_key is not None if only_key else bool(keys),
            user_key_usable=user_key is not None,
        )
        if decision == CredentialSource.USER:
            key = user_key or ""
            return Credentials(decision, key, spec.auth.headers_for(key))
        if decision == CredentialSource.CENTRAL:
            if only_key:
                key = central_key or ""
                return Credentials(decision, key, spec.auth.headers_for(key), None, row.key_label)
            key = decrypt(keys[0].ciphertext) or ""
            failover = Failover(row.provider_id, keys)
            return Credentials(decision, key, spec.auth.headers_for(key), failover, keys[0].label)
        raise _unavailable(UnavailableReason(decision), spec.label)

    def _use(self, credentials: Credentials) -> dict[str, str]:
        """Call with ``credentials`` from now on; the headers that carry them."""
        self.credential_source, self.secret = credentials.source, credentials.secret
        self.failover, self.key_label = credentials.failover, credentials.key_label
        return credentials.headers

    # -- listing -----------------------------------------------------------------------

    async def _list_models(self, row: CallRow, model: str | None) -> None:
        """The models the caller may use (or, with ``model``, that one's entry alone), from
        this server's catalog, not the provider's."""
        self.endpoint = ""  # not a model call, answered or refused: no usage row
        spec = self.spec
        assert spec is not None
        if row.provider_id is None or not row.provider_enabled:
            models: list[tuple[str, str, int]] = []
        else:
            decision = decide(
                enabled=True,
                central_key_enabled=row.central_key_enabled,
                user_keys_allowed=row.user_keys_allowed,
                central_key_fallback=row.central_key_fallback,
                central_key_usable=bool(_central_keys(row, time.time())),
                user_key_usable=decrypt(row.user_key_ciphertext) is not None,
            )
            if isinstance(decision, UnavailableReason) and self.mode is not Mode.EXTERNAL_BYOK:
                raise _unavailable(decision, spec.label)
            models = await store().models_of(row.provider_id)
        if model is None:
            await self._answer(200, orjson.dumps(self.adapter.models_listing(models)))
            return
        entry = next((found for found in models if found[0] == model), None)
        if entry is None:
            raise Refused(
                404,
                f"The model {model!r} is not available to you for {spec.label} here. "
                "List the models you can use at /models.",
                "model_not_found",
                "not_found",
            )
        await self._answer(200, orjson.dumps(self.adapter.model_entry(*entry)))

    # -- forwarding --------------------------------------------------------------------

    def _upstream_headers(self, key_headers: dict[str, str]) -> dict[str, str]:
        central = self.credential_source == CredentialSource.CENTRAL
        headers: dict[str, str] = {}
        for name, value in self.scope["headers"]:  # not self.headers: that keeps one of each
            if name in DROPPED_REQUEST_HEADERS or name.startswith(DROPPED_REQUEST_PREFIXES):
                continue
            if central and name in CENTRAL_ONLY_DROPPED:
                continue
            text = name.decode("latin-1")
            if text in headers:  # a repeated header is one list, its values joined (RFC 9110)
                headers[text] += ", " + value.decode("latin-1")
            else:
                headers[text] = value.decode("latin-1")
        # The credential always; fixed extras (anthropic-version) unless the caller chose one.
        auth_name = self.spec.auth.name.lower()  # type: ignore[union-attr]
        for header, text in key_headers.items():
            if header.lower() == auth_name:
                headers[auth_name] = text
            else:
                headers.setdefault(header.lower(), text)
        headers.setdefault("content-type", "application/json")
        return headers

    async def _forward(
        self,
        match: Match,
        row: CallRow,
        body_raw: bytes,
        body: dict[str, Any] | None,
        key_headers: dict[str, str],
    ) -> None:
        spec = self.spec
        assert spec is not None
        base = row.base_url or spec.default_base_url_for(row.region)
        if not base:
            raise Refused(
                502,
                f"{spec.label} has no endpoint configured. Contact an administrator.",
                "no_endpoint",
                "upstream_unreachable",
            )
        stream = self.adapter.is_streaming(match, body)
        self.streamed = stream
        self.metered = match.endpoint.metered
        new_body, client_wants_usage = self.adapter.prepare_body(match, body)
        dialect = DIALECTS[spec.upstream]
        try:
            url = dialect.url(
                spec.api_root(base),
                self.rest,
                _query_to_forward(self.scope.get("query_string", b"")),
                model=self.model_identifier,
                stream=stream,
            )
            data = dialect.body(new_body, body_raw, rest=self.rest, stream=stream)
        except UnsupportedCall as error:
            raise Refused(404, str(error), "not_supported", "not_found") from None
        headers = self._upstream_headers(key_headers)
        if tracing_on():
            self.trace = self.trace or call_trace(self.headers.get(b"traceparent"))
            headers["traceparent"] = self.trace.traceparent
        watch = DisconnectWatch(self)
        response = None
        try:
            try:
                response = await self._send(url, headers, data)
            except Refused as failed:
                if self.fallbacks_left and (found := await self._next_fallback(len(body_raw))):
                    raise FallBack(found, failed.status, failed.kind) from None
                raise
            if (
                self.fallbacks_left
                and falls_back_on(
                    response.status, self.credential_source == CredentialSource.CENTRAL
                )
                and (found := await self._next_fallback(len(body_raw))) is not None
            ):
                raise FallBack(found, response.status, "upstream_error")
            self.ttfb_ms = (time.perf_counter() - self.started) * 1000
            if self.adapter.tier_header is not None:
                self.served_tier = _header(response.raw_headers, self.adapter.tier_header)
            if stream and 200 <= response.status < 300:
                # Gemini without alt=sse: the caller reads one JSON array (upstream, events).
                if match.streaming_by_path and b"alt=sse" not in self.scope["query_string"]:
                    self.array = JsonArrayFramer()
                decoder = dialect.decoder()
                if decoder is None and not _is_event_stream(response):
                    await self._restream(response, client_wants_usage)
                else:
                    chunks = response.iter_chunks()
                    await self._stream(response, chunks, client_wants_usage, decoder)
            else:
                await self._relay(response, match, dialect)
        except asyncio.CancelledError:
            if not watch.stopped_the_call():
                raise
            if not self.stream_finished:  # a client that left after the end: a success
                self.error_kind, self.status = "client_disconnected", 499
        finally:
            watch.end()
            if response is not None:
                response.release()

    async def _send(self, url: str, headers: dict[str, str], data: Any) -> outbound.Response:
        """The request, sent with the call's key; with several central keys, sent again
        with the next one while the answer says the key was the trouble (see gateway.keys).
        Only before anything was passed back to the caller."""
        failover, label = self.failover, self.spec.label  # type: ignore[union-attr]
        while True:
            try:
                response = await outbound.request(
                    self.scope["method"], url, headers=headers, data=data
                )
            except Exception as error:
                failover = failover or self._failover_of_one_key()
                # A connection that failed before any answer: another key may fare better.
                if not (
                    failover is not None
                    and isinstance(error, outbound.OutboundError)
                    and failover.failed(error, label)
                ):
                    raise self._upstream_failure(error) from None
            else:
                if failover is None and response.status < 400:
                    return response  # the usual call: one key, and it worked
                failover = failover or self._failover_of_one_key()
                if failover is None or not failover.answered(
                    response.status, response.raw_headers, label
                ):
                    return response
                with contextlib.suppress(Exception):
                    await response.read()  # the error's body, so the connection is reused
                response.release()
            headers = self._with_key(headers, failover.key)

    def _failover_of_one_key(self) -> Failover | None:
        """A call on a provider's only central key (the usual case) builds its Failover only
        when the provider answers with an error, to record what the answer says of the key."""
        row = self.row
        if self.credential_source != CredentialSource.CENTRAL or row is None:
            return None
        self.failover = Failover(row.provider_id or 0, [_own_key(row)])
        return self.failover

    def _with_key(self, headers: dict[str, str], key: CentralKey) -> dict[str, str]:
        spec = self.spec
        assert spec is not None
        raw = decrypt(key.ciphertext) or ""
        self.secret, self.key_label = raw, key.label
        auth_name = spec.auth.name.lower()
        fresh = {k.lower(): v for k, v in spec.auth.headers_for(raw).items()}
        return {**headers, auth_name: fresh[auth_name]}

    async def _relay(self, response: outbound.Response, match: Match, dialect: Dialect) -> None:
        try:
            content = await response.read()
        except Exception as error:
            raise self._upstream_failure(error) from None
        self.status = response.status
        if 200 <= response.status < 300:
            try:
                content = dialect.answer(self.rest, content)
            except GarbledAnswer:
                label = self.spec.label  # type: ignore[union-attr]
                message = f"{label} sent an answer that could not be read."
                raise Refused(502, message, "garbled_response", "garbled_response") from None
        else:
            self.error_kind = "upstream_error"
            logger.warning(
                "upstream answered %s for %s/%s",
                response.status,
                self.spec.type,  # type: ignore[union-attr]
                self.model_identifier,
            )
        scrubber = Scrubber.of(self.secret)
        content = scrubber.clean(content)  # an answer or an error that quotes the key
        try:
            await self._answer(response.status, content, self._response_headers(response, scrubber))
            _let_the_reader_run()  # before the usage is read and the row queued
        finally:
            # Read once the caller has its answer (the usage is only for the row), and
            # even when the caller left meanwhile: the tokens were spent.
            if 200 <= self.status < 300 and match.endpoint.metered:
                try:
                    self.usage = self.adapter.usage_from_body(orjson.loads(content))
                except ValueError:
                    self.error_kind = "garbled_response"

    async def _restream(self, response: outbound.Response, client_wants_usage: bool) -> None:
        """A stream was asked for, and the upstream answered one JSON body (some servers
        ignore "stream": true): metered as what it is, sent as the stream the caller's SDK
        reads. A body that is not JSON after all is taken as the stream it may be."""
        try:
            content = await response.read()
        except Exception as error:
            raise self._upstream_failure(error) from None
        try:
            answer = orjson.loads(content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            await self._stream(response, _one(content), client_wants_usage, None)
            return
        self.status = response.status
        self.usage = self.adapter.usage_from_body(answer)
        wire = self.spec.wire_format  # type: ignore[union-attr]
        if self.array is not None:
            events = b"[" + orjson.dumps(answer) + b"]"
        else:
            events = as_stream(wire, self.endpoint, answer, client_wants_usage)
        scrubber = Scrubber.of(self.secret)
        headers = self._stream_headers(response, scrubber)
        headers.append((b"content-length", b"%d" % len(events)))
        await self.send({"type": "http.response.start", "status": self.status, "headers": headers})
        self.response_started = True
        await self.send({"type": "http.response.body", "body": scrubber.clean(events)})
        self.stream_finished = True

    def _stream_headers(
        self, response: outbound.Response, scrubber: Scrubber
    ) -> list[tuple[bytes, bytes]]:
        headers = self._response_headers(response, scrubber)
        kind = b"application/json" if self.array is not None else b"text/event-stream"
        headers = [(k, v) for k, v in headers if k != b"content-type"]
        headers.append((b"content-type", kind))
        return headers

    async def _stream(
        self,
        response: outbound.Response,
        chunks: AsyncIterator[bytes],
        client_wants_usage: bool,
        decoder: Any,
    ) -> None:
        reader: StreamReader = self.adapter.stream_reader(client_wants_usage, self.endpoint)
        self.status = response.status
        scrubber = Scrubber.of(self.secret)
        # The key may come back anywhere in a stream (an error event in a 200 stream), split
        # across chunks: lines are let through whole, scrubbed.
        scrub = StreamScrubber(scrubber) if scrubber else None
        array = self.array
        if decoder is not None or array is not None:
            headers = self._stream_headers(response, scrubber)
        else:
            headers = self._response_headers(response, scrubber)
        # The head goes out with the first bytes to forward, not before: the client gets
        # both at once, and a provider that fails before sending anything is answered with a
        # proper 502 or 504 instead of a stream that ends in an error event.
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        first = True
        worker.streams_open += 1
        try:
            async for chunk in chunks:
                if first:
                    self.ttfb_ms = (time.perf_counter() - self.started) * 1000
                    first = False
                if decoder is not None:
                    chunk = decoder.feed(chunk)
                out = reader.feed(chunk)
                if scrub is not None and out:
                    out = scrub.feed(out)
                if array is not None and out:
                    out = array.feed(out)
                if not out:
                    continue
                first_bytes = not self.response_started
                if first_bytes:
                    await self.send(start)
                    self.response_started = True
                await self.send({"type": "http.response.body", "body": out, "more_body": True})
                if reader.finished:
                    self.stream_finished = True
                if first_bytes:
                    _let_the_reader_run()
            tail = reader.feed(decoder.finish()) if decoder is not None else b""
            tail += reader.finish()
            if scrub is not None:
                tail = scrub.feed(tail) + scrub.finish()
            if array is not None:
                tail = array.feed(tail) + array.finish()
            if not self.response_started:
                await self.send(start)
                self.response_started = True
            await self.send({"type": "http.response.body", "body": tail, "more_body": False})
            if reader.finished:
                self.stream_finished = True
        except (outbound.OutboundError, GarbledStream, TimeoutError) as error:
            kind = "upstream_timeout" if isinstance(error, TimeoutError) else "stream_broken"
            message = self._failure_message(error)
            if not self.response_started:  # nothing sent yet: a plain error answer
                raise Refused(
                    504 if kind == "upstream_timeout" else 502, message, kind, kind
                ) from None
            self.error_kind = kind
            await self.send(
                {
                    "type": "http.response.body",
                    "more_body": False,
                    "body": self._stream_error_event(message),
                }
            )
        finally:
            worker.streams_open -= 1
            self.usage = reader.usage()

    async def _interrupted(self) -> None:
        if self.stream_finished:  # its end was relayed: a success, whatever came after
            return
        self.error_kind = self.error_kind or "server_shutdown"
        message = "The AI Gateway is restarting. Try again in a moment."
        with contextlib.suppress(Exception):  # the connection may be gone already
            if not self.response_started:
                await self._answer_error(503, message, "server_shutdown")
            elif self.streamed:
                end = self._stream_error_event(message, 503, "server_shutdown")
                await self.send({"type": "http.response.body", "more_body": False, "body": end})

    def _stream_error_event(
        self, message: str, status: int = 502, code: str = "stream_broken"
    ) -> bytes:
        """The end of a broken stream, as an error event in the caller's format (for a
        Gemini JSON array, its last element)."""
        error = orjson.loads(self.adapter.error(status, message, code))
        if self.spec and self.spec.wire_format == "anthropic":
            return f"event: error\ndata: {json.dumps(error)}\n\n".encode()
        event = f"data: {json.dumps(error)}\n\n".encode()
        return self.array.error(event) if self.array is not None else event

    def _response_headers(
        self, response: outbound.Response, scrubber: Scrubber
    ) -> list[tuple[bytes, bytes]]:
        own_key = self.credential_source == CredentialSource.USER
        return passed_back(response.raw_headers, own_key=own_key, scrubber=scrubber)

    def _upstream_failure(self, error: BaseException) -> Refused:
        message = self._failure_message(error)
        if isinstance(error, TimeoutError | asyncio.TimeoutError):
            return Refused(504, message, "upstream_timeout", "upstream_timeout")
        return Refused(502, message, "upstream_unreachable", "upstream_unreachable")

    def _failure_message(self, error: BaseException) -> str:
        label = self.spec.label if self.spec else "The provider"
        if isinstance(error, outbound.AddressRefused):
            return (
                f"{label}'s address is a link-local or cloud metadata address, which this "
                "server does not call."
            )
        if isinstance(error, TimeoutError | asyncio.TimeoutError):
            return f"{label} did not answer in time."
        if isinstance(error, GarbledStream):
            return f"{label} sent a stream that could not be read."
        if isinstance(error, outbound.ConnectError) and error.through_proxy:
            return f"{label} could not be reached through this server's outbound proxy."
        return f"{label} could not be reached ({type(error).__name__})."

    # -- answering ---------------------------------------------------------------------

    async def _answer(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.status = status
        headers = headers or [(b"content-type", b"application/json")]
        headers.append((b"content-length", b"%d" % len(body)))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        self.response_started = True
        await self.send({"type": "http.response.body", "body": body})

    async def _answer_probe(self) -> None:
        """A client's check that the base URL answers (Claude Code sends ``HEAD`` to it, and
        to ``/api/hello``, before anything else; a 404 reads as "unreachable"): 200, no
        token needed, nothing about the deployment said."""
        body = b'{"status":"ok"}'
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self.send({"type": "http.response.start", "status": 200, "headers": head})
        self.response_started = True
        get = self.scope["method"] == "GET"
        await self.send({"type": "http.response.body", "body": body if get else b""})

    async def _refuse(self, refused: Refused) -> None:
        self.error_kind = refused.kind
        if not self.response_started:
            await self._answer_error(refused.status, refused.message, refused.code, refused.headers)

    async def _answer_error(
        self,
        status: int,
        message: str,
        code: str,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if status == 499:
            self.status = status
            return
        # Before the path named a provider type: guess the caller's format from its headers.
        adapter = self.adapter if self.spec is not None else adapter_for_headers(self.headers)
        headers = [(b"content-type", b"application/json"), *(extra_headers or ())]
        await self._answer(status, adapter.error(status, message, code), headers)

    def _record(self) -> None:
        row, spec = self.row, self.spec
        if row is None or spec is None or not self.endpoint:
            return  # not authenticated, or not a model call
        if (self.error_kind or self.probing) and row.model_id is not None and self.metered:
            after_call(row, self.model_identifier, self.status, self.error_kind, self.probing)
        usage = self.usage
        if self.served_tier is not None and usage is not Call.usage:
            variants = self.adapter.tier_variants(self.served_tier)
            if variants:
                usage = self.usage = dataclasses.replace(usage, price_variants=variants)
        if usage.web_searches:  # as the provider bills them (Gemini 2.x: once per prompt)
            billed = self.adapter.billed_searches(self.model_identifier, usage.web_searches)
            if billed != usage.web_searches:
                usage = self.usage = dataclasses.replace(usage, web_searches=billed)
        cost = self._cost(row)
        # A plain tuple in USAGE_COLUMNS order: the row the batch writes as it is (building
        # a 22-field dataclass and reading it back cost ~19k instructions a call more).
        writer().record(
            (
                self.created_at,  # created_at
                row.user_id,  # user_id
                row.username,  # username
                row.token_id,  # api_key_id
                row.provider_id,  # provider_id
                spec.type,  # provider_type
                row.model_id,  # model_id
                self.model_identifier,  # model_identifier
                self.endpoint,  # endpoint
                self.streamed,  # streamed
                self.credential_source,  # credential_source
                CallRoute.IN_PROCESS  # route
                if self.mode in (Mode.IN_PROCESS, Mode.DELEGATED)
                else CallRoute.EXTERNAL,
                _printable(self.headers.get(b"user-agent", b"").decode("latin-1")[:255]),
                self.status,  # status
                self.error_kind,  # error_kind
                (time.perf_counter() - self.started) * 1000,  # latency_ms
                self.ttfb_ms,  # ttfb_ms
                usage.input_tokens,  # input_tokens
                usage.output_tokens,  # output_tokens
                usage.cache_read_tokens,  # cache_read_tokens
                usage.cache_write_tokens,  # cache_write_tokens
                usage.web_searches,  # web_searches
                # price_variants: those the cost was computed with (none where the type has
                # none: OpenRouter echoing a tier, Bedrock a speed)
                ",".join(usage.price_variants)
                if usage.price_variants and spec.has_price_variants
                else "",
                cost,  # cost_usd
                self.key_label,  # key_label
                self.fallback_from,  # fallback_from
            ),
            self._settlement(cost) if self.hold is not None else None,
            # A call refused before reaching a provider gets a span too.
            self.trace or (call_trace(self.headers.get(b"traceparent")) if tracing_on() else None),
        )

    def _settlement(self, cost: Decimal | None) -> list[Settlement]:
        """What the call's holds settle to: its cost; nothing if no answer of the
        provider's could have cost anything; else (an answer whose usage could not be read,
        a caller or stream gone mid-answer) an unknown cost, counted as a setting says. A
        request counts as one whatever came of it; its tokens as many as it used (or held,
        when unknown); a call running at once ends."""
        hold = self.hold or []
        held = {unit: amount for _, amount, unit in hold}
        usage = self.usage
        spent, unknown = self._spent(cost, held.get("usd", 0))
        used_tokens = (
            usage.input_tokens
            + usage.output_tokens
            + usage.cache_read_tokens
            + usage.cache_write_tokens
        )
        if not usage.reported and (spent or unknown):
            used_tokens = max(used_tokens, held.get("tokens", 0))
        costs = {"usd": spent, "requests": 1, "tokens": used_tokens, "calls": 0}
        return leases().settle(hold, costs, unknown)

    def _spent(self, cost: Decimal | None, held: int) -> tuple[int, bool]:
        if cost is not None:
            return int(cost.scaleb(9)), False
        usage = self.usage
        generated = usage.input_tokens or usage.output_tokens
        if not generated and (self.ttfb_ms is None or self.error_kind == "upstream_error"):
            return 0, False
        if cached_settings.BUDGETS_UNKNOWN_COST == "zero":
            return 0, True
        return held, True

    def _cost(self, row: CallRow) -> Any:
        tokens = (
            self.usage.input_tokens,
            self.usage.output_tokens,
            self.usage.cache_read_tokens,
            self.usage.cache_write_tokens,
        )
        if self.status >= 400 and not any(tokens):
            return None  # nothing was generated: no cost to know
        if self.metered and not self.usage.reported:
            return None  # answered without a usage block: unknown, never 0
        # Only where the provider type prices by them: elsewhere a tier, a geography or a
        # speed named in passing (an OpenAI-compatible server echoing OpenAI's answer, Bedrock
        # echoing Anthropic's) changes nothing.
        factors = None
        if self.usage.price_variants and self.spec.has_price_variants:  # type: ignore[union-attr]
            factors = row.price_factors
        return cost_of(self.usage, row.prices, row.long_context, factors)


class DisconnectWatch:
    """Stops the call (and so closes its upstream connection) when the client goes away.

    Reading ``receive()`` needs a task of its own. Quick calls (most, under load) never get
    one: once per ``WATCH_AFTER`` seconds, the event loop's ``_Watches`` start a watcher for
    each call that has lasted at least that long. So a call pays only for a dict entry, and a
    client that leaves is noticed at most about twice ``WATCH_AFTER`` later."""

    WATCH_AFTER = 0.2

    def __init__(self, call: Call) -> None:
        loop = asyncio.get_running_loop()
        self._call = call
        self._task = asyncio.current_task(loop)
        self._watcher: asyncio.Task[None] | None = None
        self._stopped = False
        self.since = time.perf_counter()
        self._watches = _watches.get()
        self._watches.add(self)

    def start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._call.receive())["type"] != "http.disconnect":
            pass
        self._stopped = True
        self._task.cancel()  # type: ignore[union-attr]

    def stopped_the_call(self) -> bool:
        """True when the cancellation came from here (and is then taken back)."""
        if self._stopped and self._task is not None:
            self._task.uncancel()
            return True
        return False

    def end(self) -> None:
        self._watches.discard(self)
        if self._watcher is not None:
            self._watcher.cancel()


class _Watches:
    """The calls of one event loop not watched yet, oldest first, and the one timer that
    starts their watchers when they are due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[DisconnectWatch, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: DisconnectWatch) -> None:
        self._waiting[watch] = None
        if self._timer is None:
            self._timer = self._loop.call_later(DisconnectWatch.WATCH_AFTER, self._tick)

    def discard(self, watch: DisconnectWatch) -> None:
        self._waiting.pop(watch, None)

    def _tick(self) -> None:
        due = time.perf_counter() - DisconnectWatch.WATCH_AFTER
        for watch in list(self._waiting):
            if watch.since > due:
                break  # the rest came later still
            del self._waiting[watch]
            watch.start()
        self._timer = (
            self._loop.call_later(DisconnectWatch.WATCH_AFTER, self._tick)
            if self._waiting
            else None
        )


_watches: PerLoop[_Watches] = PerLoop(lambda: _Watches(asyncio.get_running_loop()))


def _let_the_reader_run() -> None:
    """Once an answer, or a stream's first bytes, is written: let a process on this CPU that
    waits for it (a local reverse proxy, or the client) run now, before this worker goes on
    with the rest of a burst or with the call's bookkeeping (usage, row). The kernel tends
    to wake the reader on the writer's CPU. Measured on the benchmark's VM: a stream's first
    byte ~60 us sooner, a whole short answer ~17-37 us sooner (A/B, interleaved rounds).

    Only when this is the worker's one call in flight: under load there is always other work
    here, and giving the CPU away on every call cost 4% of the calls per second at 16 and 64
    connections and 13% at 256 (A/B, measured)."""
    if worker.calls_in_flight == 1 and _sched_yield is not None:
        _sched_yield()


_sched_yield = getattr(os, "sched_yield", None)  # POSIX only


def _is_event_stream(response: outbound.Response) -> bool:
    kind = _header(response.raw_headers, b"content-type")
    return kind is None or not kind.startswith(b"application/json")


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _query_to_forward(raw: bytes) -> str:
    return without_credentials(raw.decode("latin-1")) if raw else ""


# Larger compressed bodies are decoded off the event loop (zlib and zstd release the GIL),
# so a 32 MiB body does not hold up the streams this worker is relaying.
DECODE_IN_THREAD_OVER = 64 * 1024


async def _decoded(raw: bytes, codings: list[str], limit: int) -> bytes:
    try:
        if len(raw) > DECODE_IN_THREAD_OVER:
            return await asyncio.to_thread(content_coding.decode, raw, codings, limit)
        return content_coding.decode(raw, codings, limit)
    except content_coding.CorruptBody as error:
        raise Refused(400, str(error), "invalid_content_encoding", "bad_request") from None
    except content_coding.TooLarge:
        raise Refused(
            413,
            f"The request body is larger than {limit // (1024 * 1024)} MiB once decompressed.",
            "request_too_large",
            "too_large",
        ) from None


def _printable(text: str) -> str:
    """``text`` as it may be stored and shown: each control or invisible character (a
    header's latin-1 may hold C1 controls) as ``?``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _bad_model(model: object) -> Refused:
    if not isinstance(model, str) or not model:
        message, code = "Name the model to use (the request has no model).", "model_missing"
    elif len(model) > 255:
        message, code = "The model name is longer than 255 characters.", "invalid_model"
    else:  # no model is named so (and PostgreSQL cannot even compare a NUL)
        found = next(ch for ch in model if not ch.isprintable())
        what = (
            describe(found)
            if unsafe_character(found)
            else f"the invisible character U+{ord(found):04X}"
        )
        message, code = f"The model name contains {what}.", "invalid_model"
    return Refused(400, message, code, "bad_request")


_outage_log = RefusalLog("the database did not answer")
_overloaded_log = RefusalLog(
    "the request bodies held reached AI_GATEWAY_MAX_BUFFERED_BYTES on this worker"
)
_early_check_log = RefusalLog(
    "the bodies still arriving on calls whose platform token was not checked yet reached "
    f"their share (1/{UNCHECKED_SHARE}) of AI_GATEWAY_MAX_BUFFERED_BYTES on this worker",
    "had their token checked before the rest of their body was read",
    logging.WARNING,
)


def _database_unavailable(error: DatabaseUnavailable) -> Refused:
    _outage_log.count(error)
    if error.busy:
        message = "The AI Gateway's database is too busy to answer right now."
    else:
        message = "The AI Gateway cannot reach its database right now."
    return Refused(
        503, f"{message} Try again in a moment.", "database_unavailable", "database_unavailable"
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of header ``name`` (in lower case, as ``lib.http1`` gives names), or None."""
    for header, value in headers:
        if header == name:
            return value.strip().lower()
    return None


def _central_keys(row: CallRow, now: float) -> list[CentralKey]:
    """The central keys the call may try, in order (gateway.keys)."""
    own = _own_key(row) if row.central_ciphertext else None
    return central_candidates(row.provider_id or 0, own, row.further_keys, now)


def _own_key(row: CallRow) -> CentralKey:
    """The provider's own central key (slot 0), as the call's row has it."""
    cooling = row.key_cooling_until.timestamp() if row.key_cooling_until else 0.0
    return CentralKey(0, row.key_label, row.central_ciphertext, cooling, row.key_attention)


def _invalid_token() -> Refused:
    return Refused(
        401, "The platform token is invalid, revoked or expired.", "invalid_token", "unauthorized"
    )


def _unavailable(reason: UnavailableReason, label: str) -> Refused:
    if reason == UnavailableReason.USER_API_KEY_REQUIRED:
        message = (
            f"{label} needs your personal API key: add it in Settings → API Keys, or "
            "send it with your platform token in X-Coder-AI-Governance-Token."
        )
    elif reason == UnavailableReason.MISSING_API_KEY:
        message = f"{label} has no API key you can use. Contact an administrator."
    else:
        message = f"{label} is disabled on this deployment. Contact an administrator."
    return Refused(403, message, reason.value)
