"""Every view of the project, read from the URL configuration, so that a test covering
"every page" covers the next view added too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

SAMPLE_ARGS = {"int": "999999", "str": "anthropic", "slug": "anthropic", "path": "x"}
# Not ours (Django's admin, static files) or not a page (sign-in, the health check).
SKIPPED_PREFIXES = ("/django-admin/", "/static/")
PUBLIC = {"/login/", "/logout/", "/healthz"}


@dataclass(frozen=True)
class View:
    name: str
    url: str

    @property
    def admin_only(self) -> bool:
        return self.url.startswith("/admin/")

    @property
    def public(self) -> bool:
        return self.url in PUBLIC or self.url.startswith(("/invite/", "/oidc/"))


def _walk(patterns: list, prefix: str, namespace: str) -> Iterator[View]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            for converter, sample in SAMPLE_ARGS.items():
                while f"<{converter}:" in route:
                    start = route.index(f"<{converter}:")
                    route = route[:start] + sample + route[route.index(">", start) + 1 :]
            url = "/" + route.lstrip("^").rstrip("$")
            if "<" in url or "(" in url:
                continue
            yield View(f"{namespace}{pattern.name or ''}", url)


def every_view() -> list[View]:
    views = _walk(get_resolver().url_patterns, "", "")
    return [v for v in views if not v.url.startswith(SKIPPED_PREFIXES)]
