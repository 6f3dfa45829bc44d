"""axe-core in the page: the vendored copy (see vendor/README.md), injected over the DevTools
protocol so the page's Content Security Policy does not have to allow it."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).resolve().parent / "vendor"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")

RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + (n.failureSummary || "")),
  }));
}"""


@cache
def axe_source() -> str:
    source = (VENDOR / "axe.min.js").read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    assert digest == AXE_SHA256, f"vendor/axe.min.js is not axe-core {AXE_VERSION} as vendored"
    return source.decode()


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate(RUN)
    return [v for v in violations if v["impact"] in BLOCKING]


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page scrolls sideways (0 when it fits its viewport)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


OVERFLOWING = """() => {
  const clipped = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(el => ["absolute", "fixed"].includes(getComputedStyle(el).position) || !clipped(el))
    .slice(0, 5)
    .map(el => el.outerHTML.slice(0, 100));
}"""


def what_overflows(page: Any) -> list[str]:
    """The first elements that reach past the right edge of the viewport, to say why."""
    return list(page.evaluate(OVERFLOWING))
