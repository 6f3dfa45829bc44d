"""A real OpenID Connect provider on a loopback port, for tests: discovery, an authorization
page, the code flow with PKCE (S256, enforced), RS256-signed ID tokens, userinfo and JWKS.

``provider.fault`` makes it misbehave on purpose: "wrong_key" signs with a key it does not
publish, "wrong_nonce", "wrong_audience" and "wrong_issuer" put wrong claims in the token.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "llmcp-test-client"
CLIENT_SECRET = "test-client-secret-0123456789"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@dataclass
class Person:
    sub: str
    email: str
    email_verified: Any = True  # JSON true, or what a careless provider sends
    name: str = ""
    groups: list[str] = field(default_factory=list)


@dataclass
class Provider:
    people: dict[str, Person]
    issuer: str = ""
    fault: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    other_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"})
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = {}
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = {k: v[0] for k, v in parse_qs(environ["wsgi.input"].read(size).decode()).items()}
        if path == "/.well-known/openid-configuration":
            return self._json(start_response, self.discovery())
        if path == "/jwks":
            return self._json(start_response, {"keys": [self.key.as_dict(private=False)]})
        if path == "/authorize" and method == "GET":
            return self._page(start_response, query)
        if path == "/authorize" and method == "POST":
            return self._approve(start_response, body)
        if path == "/token" and method == "POST":
            return self._token(start_response, environ, body)
        if path == "/userinfo":
            bearer = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
            person = self.tokens.get(bearer)
            if person is None:
                return self._json(start_response, {"error": "invalid_token"}, "401 Unauthorized")
            return self._json(start_response, self.claims(person))
        return self._json(start_response, {"error": "not_found"}, "404 Not Found")

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def claims(self, person: Person) -> dict[str, Any]:
        return {
            "sub": person.sub,
            "email": person.email,
            "email_verified": person.email_verified,
            "name": person.name,
            "given_name": person.name.split(" ")[0] if person.name else "",
            "preferred_username": person.email.split("@")[0],
            "groups": person.groups,
        }

    def _page(self, start_response: Any, query: dict[str, str]) -> list[bytes]:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        options = "".join(
            f'<option value="{k}">{html.escape(p.email)}</option>' for k, p in self.people.items()
        )
        page = (
            "<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>"
            f'<form method="post" action="/authorize">{hidden}'
            f'<label>Account <select name="person">{options}</select></label>'
            '<button type="submit">Continue</button></form>'
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page.encode()]

    def _approve(self, start_response: Any, body: dict[str, str]) -> list[bytes]:
        if body.get("client_id") != CLIENT_ID or body.get("code_challenge_method") != "S256":
            return self._json(start_response, {"error": "invalid_request"}, "400 Bad Request")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**body, "at": time.time()}
        target = f"{body['redirect_uri']}?{urlencode({'code': code, 'state': body['state']})}"
        start_response("302 Found", [("Location", target)])
        return [b""]

    def _token(
        self, start_response: Any, environ: dict[str, Any], body: dict[str, str]
    ) -> list[bytes]:
        self.token_requests.append(body)
        client_id, secret = body.get("client_id"), body.get("client_secret")
        basic = environ.get("HTTP_AUTHORIZATION", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            return self._json(start_response, {"error": "invalid_client"}, "401 Unauthorized")
        grant = self.codes.pop(body.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != body.get("redirect_uri"):
            return self._json(start_response, {"error": "invalid_grant"}, "400 Bad Request")
        verifier = body.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != grant["code_challenge"]:
            return self._json(
                start_response,
                {"error": "invalid_grant", "error_description": "PKCE"},
                "400 Bad Request",
            )
        person = self.people[grant["person"]]
        access = secrets.token_urlsafe(24)
        self.tokens[access] = person
        now = int(time.time())
        claims = {
            **self.claims(person),
            "iss": "https://elsewhere.example" if self.fault == "wrong_issuer" else self.issuer,
            "aud": "another-client" if self.fault == "wrong_audience" else CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": "not-the-nonce" if self.fault == "wrong_nonce" else grant.get("nonce", ""),
        }
        signer = self.other_key if self.fault == "wrong_key" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signer)
        return self._json(
            start_response,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )

    @staticmethod
    def _json(start_response: Any, data: Any, status: str = "200 OK") -> list[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(data).encode()]


@contextmanager
def running_provider(people: dict[str, Person]) -> Iterator[Provider]:
    provider = Provider(people=people)
    server = make_server(
        "127.0.0.1", 0, provider, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
