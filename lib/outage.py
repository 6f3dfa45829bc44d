"""While calls are turned away or let through for one cause (a database or Redis outage, a
full worker): one log line every ``every`` seconds with the number since the last, not a
line (or a traceback) per call."""

from __future__ import annotations

import logging
import time


class RefusalLog:
    def __init__(
        self,
        cause: str,
        outcome: str = "answered 503",
        level: int = logging.ERROR,
        logger: logging.Logger | None = None,
        every: float = 10.0,
    ) -> None:
        self.cause, self.outcome, self.level = cause, outcome, level
        self.logger = logger or logging.getLogger("gateway.app")
        self.every = every
        self.last, self.refused = -every, 0
        self.total = 0  # since the process started
        self.active = False  # counted since it last ended

    def count(self, detail: object = None) -> None:
        self.refused += 1
        self.total += 1
        self.active = True
        now = time.monotonic()
        if now - self.last >= self.every:
            self.logger.log(
                self.level,
                "%s; %d call(s) %s since the last report%s",
                self.cause,
                self.refused,
                self.outcome,
                "" if detail is None else f" ({detail})",
            )
            self.last, self.refused = now, 0

    def ended(self, message: str) -> None:
        """The cause is gone (the service answered): say so once, if calls met it."""
        if not self.active:
            return
        self.logger.log(
            self.level, "%s; %d more call(s) %s before", message, self.refused, self.outcome
        )
        self.last, self.refused, self.active = -self.every, 0, False
