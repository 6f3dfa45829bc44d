"""This process's holds on budget and rate-limit counters, and the leases in them: what lets
a call that a budget or rate limit counts go to the provider without a round trip to the
database while each is far from its limit (see ``spend.holds``). One per event loop, like
the store.

A call's hold is a list of (counter, amount, unit): what it took on each counter, in that
counter's unit (nano-USD, requests, tokens or calls)."""

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
Hold = list[tuple[int, int, str]]
# Past this many leases (a rate limit has a new one each minute), empty ones unused for
# FORGET_SECONDS are dropped.
MANY_LEASES = 256
FORGET_SECONDS = 120.0


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

    def take(self, budgets: str, amounts: dict[str, int], now: datetime) -> Hold | None:
        """A call's hold, when this process's leases on every budget in ``budgets``
        (``id:period:unit,...``) that counts in a unit of ``amounts`` cover the call's amount
        in that unit; else None (and nothing taken)."""
        clock = _clock()
        leases = []
        for budget_id, start, unit in _keys(budgets, now):
            amount = amounts.get(unit)
            if amount is None:
                continue
            lease = self._by_budget.get((budget_id, start))
            if lease is None or lease.available < amount or lease.use_until < clock:
                return None
            leases.append((lease, amount, unit))
        for lease, amount, _ in leases:
            lease.available -= amount
            lease.last_used = clock
        return [(lease.counter_id, amount, unit) for lease, amount, unit in leases]

    def lend(self, budgets: str, amounts: dict[str, int], now: datetime) -> dict[int, int]:
        """What this process's leases on ``budgets`` (those counting in a unit of
        ``amounts``) put towards a call the counters top up (by budget id): taken out of the
        leases while the top-up is asked for, so no other call of this process spends it
        meanwhile."""
        from .usage import writer

        clock = _clock()
        lent, stale = {}, []
        for budget_id, start, unit in _keys(budgets, now):
            if unit not in amounts:
                continue
            key = (budget_id, start)
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

    def add(
        self,
        taken: list[Taken],
        amounts: dict[str, int],
        lent: dict[int, int],
    ) -> Hold:
        """What a top-up granted: with what the leases lent, the call's amount on each
        counter (its hold); the rest leased."""
        clock = _clock()
        if len(self._by_budget) > MANY_LEASES:
            self._forget_spent(clock)
        hold = []
        for took in taken:
            amount = amounts[took.unit]
            hold.append((took.counter_id, amount, took.unit))
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
        return hold

    def _forget_spent(self, clock: float) -> None:
        """Drop the empty leases unused for a while: those of past minutes, mostly."""
        for key, lease in list(self._by_budget.items()):
            if not lease.available and lease.last_used < clock - FORGET_SECONDS:
                del self._by_budget[key]
                self._by_counter.pop(lease.counter_id, None)

    def restore(self, lent: dict[int, int], now: datetime, budgets: str) -> None:
        """Put back what the leases lent to a top-up that was refused or failed."""
        for budget_id, start, _ in _keys(budgets, now):
            lease = self._by_budget.get((budget_id, start))
            if lease is not None:
                lease.available += lent.get(budget_id, 0)

    def settle(self, hold: Hold, costs: dict[str, int], unknown: bool) -> list[Settlement]:
        """A finished call's changes to its counters: its cost in each unit spent (an
        unknown cost in USD marked so); what it did not spend back to the lease (far from
        the limit) or to the counter (near it)."""
        settlements = []
        for counter_id, amount, unit in hold:
            cost = costs[unit]
            spent_of_hold = min(cost, amount)
            lease = self._by_counter.get(counter_id)
            released = spent_of_hold
            if lease is not None and lease.far:
                lease.available += amount - spent_of_hold
            else:
                released = amount
            marked = cost if unknown and unit == "usd" else 0
            settlements.append(Settlement(counter_id, cost, released, marked))
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


def _keys(budgets: str, now: datetime) -> list[tuple[int, datetime, str]]:
    """(budget id, the start of its current period, its unit) of each ``id:period:unit:...``
    in ``budgets``."""
    keys = []
    for entry in budgets.split(","):
        budget_id, period, unit, _ = entry.split(":", 3)
        keys.append((int(budget_id), _STARTS[period](now), unit))
    return keys


_leases: PerLoop[Leases] = PerLoop(Leases)


def leases() -> Leases:
    return _leases.get()


def forget_leases() -> Leases | None:
    return _leases.pop()
