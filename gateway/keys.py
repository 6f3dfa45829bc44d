"""Several central keys per provider: which to try, in what order, and what each answer
says of the key that got it.

A call with the central credential tries the provider's active keys in turn, starting one
further along for each call (round robin in each process). A key the provider rate-limits
(429, or Anthropic's 529 "overloaded") cools down for the time the provider names and the
call goes to the next; a key it refuses (401, 403) needs attention and is skipped while
another works; a 5xx or a connection error before any byte was passed back is tried once
more on another key. What a call learns is written to the database in the background
(``providers.health``), so every worker and replica skips the key from its next call on;
until that write lands, this process remembers it itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lib.settings_cache import cached_settings
from providers.health import key_failed, key_rate_limited, key_recovered, key_refused

from .store import decrypt

logger = logging.getLogger("gateway")

RATE_LIMITED = frozenset((429, 529))
REFUSED = frozenset((401, 403))
# How long this process trusts what it saw itself over the database (which has it by then).
REMEMBERED_SECONDS = 10.0
LONGEST_COOLDOWN = 3600.0


@dataclass(slots=True)
class CentralKey:
    slot: int  # 0: the provider's own key (Provider.api_key); else the ProviderKey's id
    label: str
    ciphertext: str
    cooling_until: float  # epoch seconds; 0: not cooling down
    attention: bool  # refused by the provider: skipped while another key works

    def __repr__(self) -> str:  # never the ciphertext
        return f"CentralKey({self.slot}, {self.label!r})"


def parse_further(text: str | None) -> list[CentralKey]:
    """The further keys as the call's query gives them: ``id|label|cooling|attention|
    ciphertext`` lines (a label holds no ``|``, a ciphertext no line break)."""
    if not text:
        return []
    keys = []
    for line in text.split("\n"):
        slot, label, cooling, attention, ciphertext = line.split("|", 4)
        keys.append(CentralKey(int(slot), label, ciphertext, float(cooling), attention == "1"))
    keys.sort(key=lambda key: key.slot)
    return keys


class KeyTurns:
    """This process's round robin over each provider's keys, and what it saw of keys
    before the database had it."""

    def __init__(self) -> None:
        self._turn: dict[int, int] = {}
        # (provider id, slot) -> (cooling until, attention, when seen)
        self._seen: dict[tuple[int, int], tuple[float, bool, float]] = {}

    def order(self, provider_id: int, keys: list[CentralKey], now: float) -> list[CentralKey]:
        """The keys to try, in order: the active ones from this call's turn on, then, when
        none is active, those that need attention (a key fixed at the provider comes back by
        itself)."""
        if self._seen:
            keys = [self._as_seen(provider_id, key, now) for key in keys]
        active = [key for key in keys if not key.attention and key.cooling_until <= now]
        if len(active) > 1:
            turn = self._turn.get(provider_id, 0)
            self._turn[provider_id] = turn + 1
            start = turn % len(active)
            active = active[start:] + active[:start]
        if active:
            return active
        # None is active: the one back soonest (the provider answers for itself, and its
        # answer reaches the caller), else those that need attention.
        resting = sorted((key for key in keys if not key.attention), key=lambda k: k.cooling_until)
        return resting[:1] or [key for key in keys if key.attention]

    def _as_seen(self, provider_id: int, key: CentralKey, now: float) -> CentralKey:
        seen = self._seen.get((provider_id, key.slot))
        if seen is None:
            return key
        cooling, attention, at = seen
        if now - at > REMEMBERED_SECONDS:
            del self._seen[(provider_id, key.slot)]
            return key
        return CentralKey(
            key.slot,
            key.label,
            key.ciphertext,
            max(key.cooling_until, cooling),
            key.attention or attention,
        )

    def saw(self, provider_id: int, key: CentralKey, cooling_until: float, attention: bool) -> None:
        self._seen[(provider_id, key.slot)] = (cooling_until, attention, time.time())

    def recovered(self, provider_id: int, key: CentralKey) -> None:
        self._seen.pop((provider_id, key.slot), None)


turns = KeyTurns()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def cooldown_seconds(headers: list[tuple[bytes, bytes]], now: float) -> float:
    """How long a rate-limited key rests: what the provider says (``retry-after-ms``,
    ``retry-after`` in seconds or as a date, OpenAI's ``x-ratelimit-reset-*`` durations,
    Anthropic's ``anthropic-ratelimit-*-reset`` times; of the resets, those whose
    remaining is 0, else the longest), else the default; between 1 s and an hour."""
    found = dict(headers)
    wait: float | None = None
    try:
        if (ms := found.get(b"retry-after-ms")) is not None:
            wait = float(ms) / 1000
        elif (after := found.get(b"retry-after")) is not None:
            text = after.decode("latin-1").strip()
            if text.replace(".", "", 1).isdigit():
                wait = float(text)
            elif (when := email.utils.parsedate_to_datetime(text)) is not None:
                wait = when.timestamp() - now
    except (ValueError, TypeError, IndexError, OverflowError):
        wait = None
    if wait is None:
        wait = _reset_headers_wait(found, now)
    if wait is None or not math.isfinite(wait):
        wait = cached_settings.AI_GATEWAY_KEY_COOLDOWN_SECONDS
    return min(max(wait, 1.0), LONGEST_COOLDOWN)


def _reset_headers_wait(found: dict[bytes, bytes], now: float) -> float | None:
    waits: list[tuple[bool, float]] = []
    for name, value in found.items():
        if not name.endswith(b"-reset") and b"-reset-" not in name:
            continue
        text = value.decode("latin-1").strip()
        if name.startswith(b"x-ratelimit-reset-"):  # OpenAI: "1s", "6m0s", "20ms"
            parts = _DURATION.findall(text)
            if not parts:
                continue
            wait = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
            remaining = found.get(b"x-ratelimit-remaining-" + name.rsplit(b"-", 1)[1])
        elif name.startswith(b"anthropic-ratelimit-"):  # RFC 3339 times
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            wait = when.timestamp() - now
            remaining = found.get(name.removesuffix(b"-reset") + b"-remaining")
        else:
            continue
        waits.append((remaining is not None and remaining.strip() == b"0", wait))
    if not waits:
        return None
    exhausted = [wait for spent, wait in waits if spent]
    return max(exhausted or [wait for _, wait in waits])


class KeyStateWrites:
    """What calls learned of keys, written in the background (in a worker thread, through
    ``providers.health``); never raises into a call."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def write(self, function: Any, *args: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._run(function, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, function: Any, *args: Any) -> None:
        try:
            await asyncio.to_thread(function, *args)
        except Exception as error:  # the database may be down: the call went on anyway
            logger.warning("could not record a central key's state (%s)", type(error).__name__)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


state_writes = KeyStateWrites()


def central_candidates(
    provider_id: int, own: CentralKey | None, further: str | None, now: float
) -> list[CentralKey]:
    """The keys a call with the central credential tries, in order (see KeyTurns.order);
    keys this process cannot decrypt are left out."""
    keys = ([own] if own is not None else []) + parse_further(further)
    keys = [key for key in keys if decrypt(key.ciphertext) is not None]
    if len(keys) == 1 and not keys[0].attention and keys[0].cooling_until <= now:
        return keys  # the usual case, one key and nothing wrong with it
    return turns.order(provider_id, keys, now)


class Failover:
    """One call's way through its central keys: the key it is on, and what each answer
    says (of that key, and whether the call goes on to the next)."""

    __slots__ = ("_at", "_retried_failure", "keys", "provider_id")

    def __init__(self, provider_id: int, keys: list[CentralKey]) -> None:
        self.provider_id, self.keys = provider_id, keys
        self._at = 0
        self._retried_failure = False

    @property
    def key(self) -> CentralKey:
        return self.keys[self._at]

    def _is_last(self) -> bool:
        return self._at + 1 >= len(self.keys)

    def answered(self, status: int, headers: list[tuple[bytes, bytes]], label: str) -> bool:
        """After the provider answered ``status``: True when the call is to go to the next
        key (and then ``key`` is that one); False to pass this answer back."""
        key = self.key
        if status < 400:
            if key.attention:
                turns.recovered(self.provider_id, key)
                state_writes.write(key_recovered, self.provider_id, key.slot, key.ciphertext)
            return False
        now = time.time()
        if status in RATE_LIMITED:
            until = now + cooldown_seconds(headers, now)
            turns.saw(self.provider_id, key, until, key.attention)
            words = f"rate-limited ({status}); resting until {_clock(until)} UTC"
            state_writes.write(
                key_rate_limited, self.provider_id, key.slot, key.ciphertext, until, words
            )
        elif status in REFUSED:
            turns.saw(self.provider_id, key, key.cooling_until, True)
            words = f"refused ({status})"
            state_writes.write(
                key_refused, self.provider_id, key.slot, key.ciphertext, status, words
            )
        elif status >= 500:
            words = f"answered {status}"
            state_writes.write(key_failed, self.provider_id, key.slot, key.ciphertext, words)
            if self._retried_failure:
                return False
            self._retried_failure = True
        else:
            return False  # the request's own fault (400, 404...): the same on every key
        return self._move_on(label, words)

    def failed(self, error: BaseException, label: str) -> bool:
        """After the provider could not be reached: True to try the next key (once)."""
        key = self.key
        words = f"could not be reached ({type(error).__name__})"
        state_writes.write(key_failed, self.provider_id, key.slot, key.ciphertext, words)
        if self._retried_failure:
            return False
        self._retried_failure = True
        return self._move_on(label, words)

    def _move_on(self, label: str, words: str) -> bool:
        if self._is_last():
            return False
        was = self.key.label
        self._at += 1
        logger.warning("%s central key %r %s; trying key %r", label, was, words, self.key.label)
        return True


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")
