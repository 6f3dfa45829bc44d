"""Every view of the project, read from the URL configuration, so that a test covering
"every page" covers the next view added too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from config.access import Access, access_of

SAMPLE_ARGS = {"int": "999999", "str": "anthropic", "slug": "anthropic", "path": "x"}
# Not ours (Django's admin, static files).
SKIPPED_PREFIXES = ("/django-admin/", "/static/")


@dataclass(frozen=True)
class View:
    name: str
    url: str

    @property
    def access(self) -> Access | None:
        """What the access table (config.access) says of this URL."""
        return access_of(self.name)

    @property
    def admin_only(self) -> bool:
        return self.access is Access.ADMIN

    @property
    def public(self) -> bool:
        return self.access is Access.PUBLIC


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


def django_admin_views() -> list[View]:
    """The Django admin's URLs: its own pages, and each registered model's list, add, change,
    delete and history pages (their patterns are regular expressions the walk passes over)."""
    names = ["index", "password_change", "password_change_done", "logout"]
    views = [View(f"admin:{name}", reverse(f"admin:{name}")) for name in names]
    for model in admin.site._registry:
        meta = model._meta
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        views.append(View(f"{prefix}_changelist", reverse(f"{prefix}_changelist")))
        views.append(View(f"{prefix}_add", reverse(f"{prefix}_add")))
        for page in ("change", "delete", "history"):
            views.append(View(f"{prefix}_{page}", reverse(f"{prefix}_{page}", args=[1])))
        views.append(
            View(
                f"admin:app_list:{meta.app_label}", reverse("admin:app_list", args=[meta.app_label])
            )
        )
    return list({view.url: view for view in views}.values())
