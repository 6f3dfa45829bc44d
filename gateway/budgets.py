"""This process's holds on budget counters, and the leases in them: what lets a call that a
budget counts go to the provider without a round trip to the database while the budget is
far from its limit (see ``spend.holds``). One per event loop, like the store."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime

from lib.loops import PerLoop
from lib.settings_cache import cached_settings
from spend.holds import Settlement, Taken
from spend.models import Period


def _clock() -> float:
    return time.monotonic()


# Seconds a lease may go unused before its process gives it back.
IDLE_SECONDS = 5.0
_STARTS = {period.value: period.start for period in Period}


@dataclass(slots=True)
class Lease:
    counter_id: int
    available: int = 0  # nano-USD this process may give its next calls without asking
    # The last top-up had room for a lease beyond the call (far from the limit): what calls
    # do not spend stays here. Near the limit it goes straight back to the counter.
    far: bool = False
    use_until: float = 0.0  # monotonic: past it, a top-up renews the hold's expiry first
    last_used: float = 0.0


class Leases:
    def __init__(self) -> None:
        self.holder = random.getrandbits(62)
        self._by_budget: dict[tuple[int, datetime], Lease] = {}
        self._by_counter: dict[int, Lease] = {}
        self._timer: asyncio.TimerHandle | None = None

    def take(self, budgets: str, amount: int, now: datetime) -> list[int] | None:
        """The counters a call of worst case ``amount`` is charged to, when this process's
        leases on every budget in ``budgets`` (``id:period,...``) cover it; else None (and
        nothing taken)."""
        clock = _clock()
        leases = []
        for key in _keys(budgets, now):
            lease = self._by_budget.get(key)
            if lease is None or lease.available < amount or lease.use_until < clock:
                return None
            leases.append(lease)
        for lease in leases:
            lease.available -= amount
            lease.last_used = clock
        return [lease.counter_id for lease in leases]

    def lend(self, budgets: str, now: datetime) -> dict[int, int]:
        """What this process's leases on ``budgets`` put towards a call the counters top up
        (by budget id): taken out of the leases while the top-up is asked for, so no other
        call of this process spends it meanwhile."""
        from .usage import writer

        clock = _clock()
        lent, stale = {}, []
        for key in _keys(budgets, now):
            lease = self._by_budget.get(key)
            if lease is None or not lease.available:
                continue
            if lease.use_until < clock:  # its hold may have expired: give it back instead
                stale.append(Settlement(lease.counter_id, 0, lease.available, 0))
            else:
                lent[key[0]] = lease.available
            lease.available = 0
        if stale:
            writer().give_back(stale)
        return lent

    def add(self, taken: list[Taken], amount: int, lent: dict[int, int]) -> list[int]:
        """What a top-up granted: with what the leases lent, the call's ``amount`` on each
        counter; the rest leased."""
        clock = _clock()
        for took in taken:
            lease = self._by_budget.get((took.budget_id, took.period_start))
            if lease is None:
                lease = Lease(took.counter_id)
                self._by_budget[(took.budget_id, took.period_start)] = lease
                self._by_counter[took.counter_id] = lease
            lease.available += lent.get(took.budget_id, 0) + took.granted - amount
            lease.far = lease.available > 0
            lease.use_until = clock + cached_settings.BUDGETS_HOLD_SECONDS / 2
            lease.last_used = clock
        self._watch_idle()
        return [took.counter_id for took in taken]

    def restore(self, lent: dict[int, int], now: datetime, budgets: str) -> None:
        """Put back what the leases lent to a top-up that was refused or failed."""
        for key in _keys(budgets, now):
            lease = self._by_budget.get(key)
            if lease is not None:
                lease.available += lent.get(key[0], 0)

    def settle(
        self, counters: list[int], amount: int, cost: int, unknown: bool
    ) -> list[Settlement]:
        """A finished call's changes to its counters: its cost spent; what it did not spend
        back to the lease (far from the limit) or to the counter (near it)."""
        spent_of_hold = min(cost, amount)
        settlements = []
        for counter_id in counters:
            lease = self._by_counter.get(counter_id)
            released = spent_of_hold
            if lease is not None and lease.far:
                lease.available += amount - spent_of_hold
            else:
                released = amount
            settlements.append(Settlement(counter_id, cost, released, cost if unknown else 0))
        return settlements

    def idle(self, older_than: float) -> list[Settlement]:
        """Give back the leases unused since ``older_than`` (monotonic)."""
        settlements = []
        for lease in self._by_counter.values():
            if lease.available and lease.last_used < older_than:
                settlements.append(Settlement(lease.counter_id, 0, lease.available, 0))
                lease.available = 0
        return settlements

    def all(self) -> list[Settlement]:
        return self.idle(float("inf"))

    def _watch_idle(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._check_idle)

    def _check_idle(self) -> None:
        from .usage import writer

        self._timer = None
        given_back = self.idle(_clock() - IDLE_SECONDS)
        if given_back:
            writer().give_back(given_back)
        if any(lease.available for lease in self._by_counter.values()):
            self._watch_idle()

    def close(self) -> list[Settlement]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return self.all()


def _keys(budgets: str, now: datetime) -> list[tuple[int, datetime]]:
    """(budget id, the start of its current period) of each ``id:period`` in ``budgets``."""
    keys = []
    for entry in budgets.split(","):
        budget_id, _, period = entry.partition(":")
        keys.append((int(budget_id), _STARTS[period](now)))
    return keys


_leases: PerLoop[Leases] = PerLoop(Leases)


def leases() -> Leases:
    return _leases.get()


def forget_leases() -> Leases | None:
    return _leases.pop()
