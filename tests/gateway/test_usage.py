"""Usage rows: cost rules, batching off the request path, nothing dropped silently."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.models import UsageRecord
from gateway.store import USAGE_COLUMNS
from gateway.usage import UsageWriter, cost_of
from gateway.wire import ADAPTERS, TOKEN_COUNT_MAX, Usage
from providers.registry import WireFormat

pytestmark = pytest.mark.django_db(transaction=True)

# Micro-USD per 1M tokens: input 3, output 15, cache read 0.3, cache write 3.75, and 6 for a
# cache write kept an hour (Anthropic's Claude Sonnet prices); then micro-USD per 1,000 web
# searches: 10.
PRICES = (3_000_000, 15_000_000, 300_000, 3_750_000, 6_000_000, 10_000_000)
NO_PRICES = (None,) * 6


def test_cost_is_tokens_times_price_per_million_for_each_kind():
    usage = Usage(
        input_tokens=1_000, output_tokens=2_000, cache_read_tokens=10_000, cache_write_tokens=400
    )
    # 1,000 x 3 + 2,000 x 15 + 10,000 x 0.3 + 400 x 3.75, per million.
    assert cost_of(usage, PRICES) == Decimal("0.037500000")


def test_cache_writes_kept_an_hour_are_priced_at_their_own_price():
    """Anthropic charges 1.25x the input price for a cache entry kept five minutes and 2x for
    one kept an hour; before, every write was priced as a five-minute one."""
    usage = Usage(input_tokens=1_000, cache_write_tokens=400, cache_write_1h_tokens=100)
    # 1,000 x 3 + 300 x 3.75 + 100 x 6, per million.
    assert cost_of(usage, PRICES) == Decimal("0.004725000")
    every_write_an_hour = Usage(cache_write_tokens=400, cache_write_1h_tokens=400)
    assert cost_of(every_write_an_hour, PRICES) == Decimal("0.0024")
    # Only hour-long writes: the five-minute price is not needed, the hour's is.
    assert cost_of(every_write_an_hour, (*PRICES[:3], None, *PRICES[4:])) == Decimal("0.0024")
    assert cost_of(every_write_an_hour, (*PRICES[:4], None, PRICES[5])) is None


def test_web_searches_are_priced_per_search_on_top_of_the_tokens():
    """Anthropic, OpenAI and Google bill a search their model runs at a price per 1,000
    searches (10 USD for Claude's web search), besides the tokens its results add."""
    usage = Usage(input_tokens=1_000, output_tokens=100, web_searches=3)
    # 1,000 x 3 + 100 x 15 per million, and 3 x 10 per thousand.
    assert cost_of(usage, PRICES) == Decimal("0.034500000")
    # Searches while the model has no search price: unknown, never the tokens alone.
    assert cost_of(usage, (*PRICES[:5], None)) is None
    # A search price is not needed by a call that did not search.
    assert cost_of(Usage(input_tokens=1_000), (*PRICES[:5], None)) == Decimal("0.003")
    # Over the long-context threshold the tokens take the long prices; a search costs the same.
    long = Usage(input_tokens=300_000, web_searches=2)
    assert cost_of(long, PRICES, (200_000, 6_000_000, 22_500_000)) == Decimal("1.820000000")
    assert cost_of(long, (*PRICES[:5], None), (200_000, 6_000_000, 22_500_000)) is None


# Claude Sonnet with its 1M-token context: over 200k prompt tokens, 6 in and 22.50 out.
LONG_CONTEXT = (200_000, 6_000_000, 22_500_000)


# OpenAI's flex tier at half the usual prices, its priority tier at twice (GPT-5);
# Anthropic's US-only inference at 1.1 times and its fast mode at 6 (Opus 4.6); OpenAI's
# ultrafast tier at 6 (GPT-6 Astra); in millionths as the lookup gives them.
FACTORS = (500_000, 2_000_000, 1_100_000, 6_000_000, 6_000_000)


def test_a_call_on_the_flex_or_priority_tier_costs_its_tokens_times_the_tier_factor():
    usage = Usage(input_tokens=1_000, output_tokens=100, cache_read_tokens=1_000)
    usual = cost_of(usage, PRICES, price_factors=FACTORS)
    assert usual == Decimal("0.004800000")  # no tier named: the usual prices
    flex = replace(usage, price_variants=("flex",))
    assert cost_of(flex, PRICES, price_factors=FACTORS) == Decimal("0.002400000")
    priority = replace(usage, price_variants=("priority",))
    assert cost_of(priority, PRICES, price_factors=FACTORS) == Decimal("0.009600000")
    # A tier whose factor is not set: unknown, not the usual prices.
    assert cost_of(priority, PRICES, price_factors=(500_000, None, 1_100_000, None, None)) is None
    # A provider type whose prices do not depend on the tier: the usual prices.
    assert cost_of(priority, PRICES, price_factors=None) == usual
    # Searches are not scaled; over the long-context threshold the factor scales those prices.
    searched = replace(priority, web_searches=1)
    assert cost_of(searched, PRICES, price_factors=FACTORS) == Decimal("0.019600000")
    long = replace(priority, input_tokens=300_000)
    long_context = (200_000, 6_000_000, 22_500_000)
    # (300,000 x 6 + 100 x 22.5 + 1,000 x 0.3 x 2) per million, times 2.
    assert cost_of(long, PRICES, long_context, FACTORS) == Decimal("3.605700000")


def test_anthropics_fast_mode_and_us_only_inference_multiply_the_token_cost():
    """Anthropic bills a call it ran only in the US (inference_geo "us") at 1.1 times the
    usual prices on Claude Opus 4.6 and later, one in fast mode at 6 times on Opus 4.6, and
    one both at both; a model without the factor a call needs: unknown."""
    usage = Usage(input_tokens=1_000, output_tokens=100)  # 0.0045 at the usual prices
    costs = {
        (): "0.004500000",
        ("us_inference",): "0.004950000",
        ("fast",): "0.027000000",
        ("fast", "us_inference"): "0.029700000",
    }
    for variants, cost in costs.items():
        ran = replace(usage, price_variants=variants)
        assert cost_of(ran, PRICES, price_factors=FACTORS) == Decimal(cost)
    both = replace(usage, price_variants=("fast", "us_inference"))
    assert cost_of(both, PRICES, price_factors=(None, None, 1_100_000, None, None)) is None
    assert cost_of(both, PRICES, price_factors=(None, None, None, 6_000_000, None)) is None
    # A tier OpenAI names that no factor prices: unknown, never the usual prices.
    unknown = replace(usage, price_variants=("unknown",))
    assert cost_of(unknown, PRICES, price_factors=FACTORS) is None


@given(
    counts=st.tuples(*[st.integers(0, 10**9)] * 5, st.integers(0, 10**6)),
    prices=st.tuples(*[st.none() | st.integers(0, 10**12)] * 6),
    long_context=st.tuples(
        st.integers(min_value=1, max_value=10**10),
        st.none() | st.integers(min_value=0, max_value=10**12),
        st.none() | st.integers(min_value=0, max_value=10**12),
    ),
    variants=st.sampled_from(
        [
            (),
            ("flex",),
            ("priority",),
            ("ultrafast",),
            ("unknown",),
            ("us_inference",),
            ("fast",),
            ("fast", "us_inference"),
        ]
    ),
    factors=st.none() | st.tuples(*[st.none() | st.integers(0, 10**8)] * 5),
)
def test_the_price_factors_scale_the_exact_token_cost_and_round_once(
    counts, prices, long_context, variants, factors
):
    """Against the cost with no variant and no searches, computed exactly: each variant's
    factor scales it, the searches add to it, and the sum is rounded half to even once."""
    usage = replace(Usage(*counts), price_variants=variants)
    result = cost_of(usage, prices, long_context, factors)
    tokens_only = cost_of(replace(usage, web_searches=0, price_variants=()), prices, long_context)
    position = {"flex": 0, "priority": 1, "us_inference": 2, "fast": 3, "ultrafast": 4}
    factor: Fraction | None = Fraction(1)
    for variant in variants if factors is not None else ():
        step = factors[position[variant]] if variant in position else None
        factor = None if step is None or factor is None else factor * Fraction(step, 1_000_000)
    searches_unpriced = counts[5] and prices[5] is None
    if all(p is None for p in prices) or factor is None or searches_unpriced:
        assert result is None
        return
    exact = _exact_token_cost(usage, prices, long_context)
    if exact is None:
        assert result is None and tokens_only is None
        return
    pico = exact * factor + (counts[5] * prices[5] * 1000 if counts[5] else 0)
    nano = round(pico / 1000)
    assert result == (None if nano >= 10**18 else Decimal(nano).scaleb(-9))


def _exact_token_cost(usage: Usage, prices, long_context) -> Fraction | None:
    """The tokens' cost in pico-USD as an exact fraction, or None where a price is missing."""
    hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    cache = (usage.cache_read_tokens, usage.cache_write_tokens - hour, hour)
    threshold, long_input, long_output = long_context
    plain_prices = prices[:2]
    factor = Fraction(1)
    if usage.input_tokens + sum(cache) > threshold:
        plain_prices = (long_input, long_output)
        if any(n and p for n, p in zip(cache, prices[2:5], strict=True)):
            if not prices[0] or long_input is None:
                return None
            factor = Fraction(long_input, prices[0])
    total = Fraction(0)
    for count, price, scale in zip(
        (usage.input_tokens, usage.output_tokens, *cache),
        (*plain_prices, *prices[2:5]),
        (1, 1, factor, factor, factor),
        strict=True,
    ):
        if count:
            if price is None:
                return None
            total += count * price * scale
    return total


def test_a_prompt_over_the_long_context_threshold_is_priced_at_the_long_context_prices():
    """Over the threshold, input and output take the long-context prices and the cache
    prices scale with the input price (here 2x); the prompt counts its cache reads and
    writes. At the threshold itself, the usual prices still apply."""
    over = Usage(input_tokens=150_000, output_tokens=1_000, cache_read_tokens=60_000)
    # 150,000 x 6 + 1,000 x 22.5 + 60,000 x 0.3 x 2, per million.
    assert cost_of(over, PRICES, LONG_CONTEXT) == Decimal("0.958500000")
    assert cost_of(over, PRICES) == Decimal("0.483000000")  # no threshold: one price
    at = Usage(input_tokens=140_000, output_tokens=1_000, cache_read_tokens=60_000)
    assert cost_of(at, PRICES, LONG_CONTEXT) == Decimal("0.453000000")
    writes = Usage(input_tokens=200_000, cache_write_tokens=500, cache_write_1h_tokens=100)
    # 200,000 x 6 + 400 x 3.75 x 2 + 100 x 6 x 2, per million.
    assert cost_of(writes, PRICES, LONG_CONTEXT) == Decimal("1.204200000")
    # A price it needs and does not have: unknown.
    assert cost_of(over, PRICES, (200_000, None, 22_500_000)) is None
    assert cost_of(over, (None, *PRICES[1:]), LONG_CONTEXT) is None  # no factor for the cache
    assert cost_of(over, (*PRICES[:2], None, *PRICES[3:]), LONG_CONTEXT) is None


def test_unknown_prices_give_an_unknown_cost_never_zero():
    usage = Usage(input_tokens=10, output_tokens=10)
    assert cost_of(usage, NO_PRICES) is None
    assert cost_of(usage, (3_000_000, *NO_PRICES[1:])) is None  # output used, unpriced
    assert cost_of(Usage(input_tokens=10), (3_000_000, *NO_PRICES[1:])) == Decimal("0.00003")
    assert cost_of(Usage(), PRICES) == Decimal(0)


@given(
    counts=st.tuples(*[st.integers(min_value=0, max_value=10**12)] * 5, st.integers(0, 10**9)),
    prices=st.tuples(*[st.none() | st.decimals(min_value=0, max_value=10**8 - 1, places=6)] * 6),
)
@example(counts=(1, 0, 0, 0, 0, 0), prices=(Decimal("0.0005"), *NO_PRICES[1:]))  # half: even
@example(counts=(3, 0, 0, 0, 0, 0), prices=(Decimal("0.0005"), *NO_PRICES[1:]))
@example(counts=(1, 0, 0, 0, 0, 0), prices=(Decimal("0.0015"), *NO_PRICES[1:]))
@example(counts=(0, 0, 0, 5, 9, 0), prices=(*NO_PRICES[:4], Decimal(2), None))  # all an hour
@example(counts=(0, 0, 0, 0, 0, 3), prices=(*NO_PRICES[:5], Decimal(10)))  # searches alone
def test_the_cost_in_whole_numbers_is_the_cost_in_decimals(counts, prices):
    """Prices as the lookup gives them (micro-USD) and whole-number arithmetic give exactly
    what Decimal arithmetic gives: the sum per million tokens and per thousand searches,
    rounded half to even to the nano-USD. Hour-long cache writes are part of the cache writes
    (never more than them)."""
    usage = Usage(*counts)
    micro = tuple(None if p is None else int(p.scaleb(6)) for p in prices)
    hour = min(counts[4], counts[3])
    # Searches at a price per thousand are tokens at a thousand times that price per million.
    kinds = (*counts[:3], counts[3] - hour, hour, counts[5])
    per_million = (*prices[:5], None if prices[5] is None else prices[5] * 1000)
    used = [(n, p) for n, p in zip(kinds, per_million, strict=True) if n]
    if all(p is None for p in prices) or any(p is None for _, p in used):
        expected = None
    else:
        total = sum((p * n for n, p in used), Decimal(0))
        with localcontext(prec=60):
            expected = total.scaleb(-6).quantize(Decimal("0.000000001"), ROUND_HALF_EVEN)
        if expected >= 10**9:  # more than the cost column holds: unknown
            expected = None
    assert cost_of(usage, micro) == expected


@given(
    counts=st.tuples(*[st.integers(min_value=0, max_value=10**9)] * 5, st.integers(0, 10**6)),
    prices=st.tuples(*[st.none() | st.integers(min_value=0, max_value=10**12)] * 6),
    long_context=st.tuples(
        st.integers(min_value=1, max_value=10**9),
        st.none() | st.integers(min_value=0, max_value=10**12),
        st.none() | st.integers(min_value=0, max_value=10**12),
    ),
)
@example(  # 500 + 1/3 pico-USD: just over half a nano-USD, so 1 (500 alone rounds to 0)
    counts=(500, 0, 1, 0, 0, 0), prices=(3, None, 1, None, None, None), long_context=(1, 1, 0)
)
@example(  # free cache reads need no factor, even with no input price
    counts=(0, 5, 7, 0, 0, 0), prices=(None, 1, 0, None, None, None), long_context=(1, 1, 9)
)
def test_the_long_context_cost_is_the_exact_fraction_rounded_once(counts, prices, long_context):
    """Prices in micro-USD as the lookup gives them. Over the threshold the cost is the
    exact sum with the cache prices scaled by long input / input, rounded half to even to
    the nano-USD once; unknown where a price it needs is missing."""
    usage = Usage(*counts)
    threshold, long_input, long_output = long_context
    hour = min(counts[4], counts[3])
    cache = (counts[2], counts[3] - hour, hour)
    result = cost_of(usage, prices, long_context)
    if all(p is None for p in prices):
        assert result is None
        return
    if counts[0] + sum(cache) <= threshold:
        assert result == cost_of(usage, prices)
        return
    needed = [long_input if counts[0] else 0, long_output if counts[1] else 0]
    needed += [p if n else 0 for n, p in zip(cache, prices[2:5], strict=True)]
    needed += [prices[5] if counts[5] else 0]
    priced_cache = any(n and p for n, p in zip(cache, prices[2:5], strict=True))
    if priced_cache:  # a cache price to scale, by long input / input
        needed += [prices[0] or None, long_input]
    if any(p is None for p in needed):
        assert result is None
        return
    factor = Fraction(long_input, prices[0]) if priced_cache else Fraction(0)
    pico = counts[0] * long_input if counts[0] else 0
    pico += counts[1] * long_output if counts[1] else 0
    pico += sum((n * p * factor for n, p in zip(cache, prices[2:5], strict=True) if n), Fraction(0))
    pico += counts[5] * prices[5] * 1000 if counts[5] else 0  # per thousand, not scaled
    nano = round(pico / 1000)  # Python rounds a Fraction half to even
    assert result == (None if nano >= 10**18 else Decimal(nano).scaleb(-9))


def event(**overrides) -> tuple:
    """A usage row as the gateway queues it: its values in USAGE_COLUMNS order."""
    values = dict(
        created_at=datetime.now(UTC),
        user_id=None,
        username="u",
        api_key_id=None,
        provider_id=None,
        provider_type="openai",
        model_id=None,
        model_identifier="m",
        endpoint="chat.completions",
        streamed=False,
        credential_source="central",
        route="external",
        user_agent="",
        status=200,
        error_kind="",
        latency_ms=1.0,
        ttfb_ms=1.0,
        input_tokens=1,
        output_tokens=1,
        cache_read_tokens=0,
        cache_write_tokens=0,
        web_searches=0,
        price_variants="",
        cost_usd=None,
        key_label="",
        fallback_from="",
    )
    values.update(overrides)
    assert list(values) == list(USAGE_COLUMNS)
    return tuple(values.values())


def test_rows_are_written_in_batches_and_flushed(settings):
    async def main():
        writer = UsageWriter()
        for i in range(1_200):
            writer.record(event(input_tokens=i))
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert writer.written == 1_200 and writer.dropped == 0
    # Only this test's rows: a server from an earlier test may still write a late one.
    assert UsageRecord.objects.filter(username="u").count() == 1_200


def test_a_full_queue_drops_rows_counts_them_and_says_so(settings, caplog):
    settings.AI_GATEWAY_USAGE_QUEUE_SIZE = 10
    caplog.set_level(logging.WARNING)

    async def main():
        writer = UsageWriter()
        for _ in range(25):
            writer.record(event())
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert writer.dropped == 15 and writer.written == 10
    assert "usage queue full: 1 usage row(s) dropped so far" in caplog.text
    assert UsageRecord.objects.filter(username="u").count() == 10


def test_a_provider_reporting_absurd_usage_costs_no_one_their_rows():
    """Any OpenAI-compatible server can report any numbers. Counts beyond what the table
    holds are capped, a cost beyond it is unknown, and the row is written with the others of
    its batch; before, it made the whole batch fail, dropping everyone's rows."""
    usage = ADAPTERS[WireFormat.OPENAI].usage_from_body(
        {"usage": {"prompt_tokens": 10**15, "completion_tokens": 2**40}}
    )
    assert (usage.input_tokens, usage.output_tokens) == (TOKEN_COUNT_MAX, TOKEN_COUNT_MAX)
    top_price = 10**12  # $1M per 1M tokens, the most a model's price may be, in micro-USD
    assert cost_of(usage, (top_price,) * 6) is None
    largest = cost_of(Usage(input_tokens=TOKEN_COUNT_MAX), (400_000 * 10**6, *NO_PRICES[1:]))
    assert largest == Decimal("858993458.800000000")
    rows = [
        event(input_tokens=1),
        event(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        event(input_tokens=TOKEN_COUNT_MAX, cost_usd=largest),
        event(input_tokens=2),
    ]

    async def main():
        writer = UsageWriter()
        for row in rows:
            writer.record(row)
        await writer.close()
        return writer

    writer = asyncio.run(main())
    assert (writer.written, writer.dropped) == (4, 0)
    written = UsageRecord.objects.filter(username="u").order_by("id")
    assert [r.input_tokens for r in written] == [1, TOKEN_COUNT_MAX, TOKEN_COUNT_MAX, 2]
    assert written[2].cost_usd == largest


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "prompt_tokens",
                "completion_tokens",
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "promptTokenCount",
                "candidatesTokenCount",
                "thoughtsTokenCount",
                "cachedContentTokenCount",
                "toolUsePromptTokenCount",
            ]
        ),
        st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.text(max_size=3),
    ),
    st.sampled_from(list(WireFormat)),
)
def test_every_reported_count_fits_the_usage_table(block, wire):
    """Whatever a provider's usage block says, each count is a whole number the usage
    table's integer columns hold."""
    body = {"usageMetadata": block} if wire == WireFormat.GOOGLE else {"usage": block}
    usage = ADAPTERS[wire].usage_from_body(body)
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    )
    assert all(isinstance(n, int) and 0 <= n <= TOKEN_COUNT_MAX for n in counts)


@given(
    total=st.integers(min_value=-(2**70), max_value=2**70) | st.none() | st.text(max_size=3),
    by_ttl=st.none()
    | st.text(max_size=3)
    | st.dictionaries(
        st.sampled_from(["ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "other"]),
        st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.text(max_size=3),
    ),
)
def test_hour_long_cache_writes_are_counted_within_the_cache_writes(total, by_ttl):
    """Whatever the split by ttl says, the hour-long writes are a whole number no greater
    than the cache writes, so the five-minute writes priced apart are never negative."""
    usage = ADAPTERS[WireFormat.ANTHROPIC].usage_from_body(
        {"usage": {"cache_creation_input_tokens": total, "cache_creation": by_ttl}}
    )
    assert isinstance(usage.cache_write_1h_tokens, int)
    assert 0 <= usage.cache_write_1h_tokens <= usage.cache_write_tokens <= TOKEN_COUNT_MAX


def test_anthropic_cache_writes_are_split_by_how_long_they_are_kept():
    """A Messages answer with writes of both lengths, as the API reports them: the total, and
    its split by ttl. A stream gives the split in message_start only; message_delta repeats
    the totals without it."""
    usage_block = {
        "input_tokens": 21,
        "output_tokens": 393,
        "cache_read_input_tokens": 1_800,
        "cache_creation_input_tokens": 2_500,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 2_000},
    }
    adapter = ADAPTERS[WireFormat.ANTHROPIC]
    expected = Usage(21, 393, 1_800, 2_500, 2_000, reported=True)
    assert adapter.usage_from_body({"usage": usage_block}) == expected
    start = {"type": "message_start", "message": {"usage": {**usage_block, "output_tokens": 1}}}
    delta = {
        "type": "message_delta",
        "usage": {key: value for key, value in usage_block.items() if key != "cache_creation"},
    }
    reader = adapter.stream_reader(client_wants_usage=True)
    reader.feed(b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in (start, delta)))
    assert reader.usage() == expected
    # An older answer without the split: every write counts as a five-minute one.
    assert adapter.usage_from_body({"usage": {"cache_creation_input_tokens": 9}}) == Usage(
        cache_write_tokens=9, reported=True
    )


def test_openai_format_cache_writes_are_told_apart_from_the_prompt():
    """OpenRouter's usage block for a Claude call that wrote its prompt to the cache (its
    docs' example): the writes are in prompt_tokens and named in prompt_tokens_details; they
    are priced as cache writes, not as input. The Responses format names them the same way."""
    adapter = ADAPTERS[WireFormat.OPENAI]
    chat = {
        "completion_tokens": 2,
        "prompt_tokens": 194,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100},
        "total_tokens": 196,
        "cost": 0.95,
    }
    assert adapter.usage_from_body({"usage": chat}) == Usage(94, 2, 0, 100, reported=True)
    responses = {
        "input_tokens": 194,
        "input_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 100},
        "output_tokens": 2,
    }
    assert adapter.usage_from_body({"usage": responses}) == Usage(44, 2, 50, 100, reported=True)


@given(
    total=st.integers(min_value=-(2**40), max_value=2**40),
    details=st.none()
    | st.dictionaries(
        st.sampled_from(["cached_tokens", "cache_write_tokens", "audio_tokens"]),
        st.integers(min_value=-(2**40), max_value=2**40) | st.none() | st.text(max_size=3),
    ),
    chat=st.booleans(),
)
def test_openai_format_counts_never_count_a_prompt_token_twice(total, details, chat):
    """Whatever the details say, input, cache reads and cache writes are whole numbers the
    table holds, and together they are the prompt whenever the parts fit in it."""
    usage_block = (
        {"prompt_tokens": total, "prompt_tokens_details": details}
        if chat
        else {"input_tokens": total, "input_tokens_details": details}
    )
    usage = ADAPTERS[WireFormat.OPENAI].usage_from_body({"usage": usage_block})
    counts = (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    assert all(isinstance(n, int) and 0 <= n <= TOKEN_COUNT_MAX for n in counts)
    if 0 < total <= TOKEN_COUNT_MAX and usage.cache_read_tokens + usage.cache_write_tokens <= total:
        assert sum(counts) == total


def test_google_counts_what_its_tools_fed_the_model_as_input():
    """A grounded Gemini call (Google Search on) as Google reports it: the search results
    are in toolUsePromptTokenCount, apart from promptTokenCount, and billed as input; the
    total is the sum of the four counts."""
    block = {
        "promptTokenCount": 151,
        "cachedContentTokenCount": 51,
        "candidatesTokenCount": 1089,
        "toolUsePromptTokenCount": 18329,
        "thoughtsTokenCount": 1120,
        "totalTokenCount": 20689,
    }
    usage = ADAPTERS[WireFormat.GOOGLE].usage_from_body({"usageMetadata": block})
    assert usage == Usage(
        input_tokens=100 + 18329, output_tokens=1089 + 1120, cache_read_tokens=51, reported=True
    )
    counted = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens
    assert counted == block["totalTokenCount"]


def _sse(*events: object) -> bytes:
    return b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events)


def test_each_format_counts_the_web_searches_a_call_ran():
    """As each API reports them: Anthropic counts them in usage.server_tool_use (a stream, in
    message_delta); an OpenAI response lists each as a web_search_call item of its output (a
    stream, in response.completed); Gemini names each Google Search query in its candidates'
    grounding metadata (a stream may repeat them over several chunks: each counts once)."""
    anthropic = ADAPTERS[WireFormat.ANTHROPIC]
    tools = {"web_search_requests": 3, "web_fetch_requests": 2}
    body = {"usage": {"input_tokens": 10, "output_tokens": 5, "server_tool_use": tools}}
    assert anthropic.usage_from_body(body).web_searches == 3
    reader = anthropic.stream_reader(client_wants_usage=True)
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 10}}}
    delta = {"type": "message_delta", "usage": {"output_tokens": 5, "server_tool_use": tools}}
    reader.feed(_sse(start, delta))
    assert reader.usage() == Usage(input_tokens=10, output_tokens=5, web_searches=3, reported=True)

    openai = ADAPTERS[WireFormat.OPENAI]
    searched = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    response = {
        "output": [searched, {**searched, "id": "ws_2"}, {"type": "message", "content": []}],
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    assert openai.usage_from_body(response).web_searches == 2
    reader = openai.stream_reader(client_wants_usage=True)
    reader.feed(_sse({"type": "response.completed", "response": response}))
    assert reader.usage() == Usage(input_tokens=10, output_tokens=5, web_searches=2, reported=True)
    chat = {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    assert openai.usage_from_body(chat).web_searches == 0
    # OpenRouter counts them in usage.server_tool_use, chat completions or responses; a
    # response that also lists them as items is not counted twice.
    routed = {"prompt_tokens": 10, "server_tool_use": {"web_search_requests": 4}}
    assert openai.usage_from_body({"choices": [], "usage": routed}).web_searches == 4
    listed = {
        **response,
        "usage": {"input_tokens": 10, "server_tool_use": {"web_search_requests": 2}},
    }
    assert openai.usage_from_body(listed).web_searches == 2

    google = ADAPTERS[WireFormat.GOOGLE]
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 5}

    def chunk(*queries: str) -> dict:
        grounding = {"webSearchQueries": list(queries)}
        return {
            "candidates": [{"index": 0, "groundingMetadata": grounding}],
            "usageMetadata": usage,
        }

    assert google.usage_from_body(chunk("weather", "news")).web_searches == 2
    reader = google.stream_reader(client_wants_usage=True)
    reader.feed(_sse(chunk("weather")))
    reader.feed(_sse(chunk("weather", "news"), {"candidates": [], "usageMetadata": usage}))
    assert reader.usage() == Usage(input_tokens=10, output_tokens=5, web_searches=2, reported=True)


def test_anthropic_answers_say_how_fast_and_where_their_inference_ran():
    """usage.speed "fast" (fast mode) and usage.inference_geo "us" (US-only inference), each
    priced apart, in the answer or a stream's message_start (message_delta may repeat them);
    "standard", "global" and anything else: the usual prices."""
    anthropic = ADAPTERS[WireFormat.ANTHROPIC]
    usage = {"input_tokens": 10, "output_tokens": 5, "speed": "fast", "inference_geo": "us"}
    ran = ("fast", "us_inference")
    assert anthropic.usage_from_body({"usage": usage}).price_variants == ran
    for speed, geo in (("standard", "global"), ("slow", "eu"), (None, None), (7, ["us"])):
        answer = {"usage": {**usage, "speed": speed, "inference_geo": geo}}
        assert anthropic.usage_from_body(answer).price_variants == ()
    only_us = {"usage": {**usage, "speed": "standard"}}
    assert anthropic.usage_from_body(only_us).price_variants == ("us_inference",)
    for delta in ({"output_tokens": 5}, {"output_tokens": 5, "speed": "fast"}):
        reader = anthropic.stream_reader(client_wants_usage=True)
        reader.feed(
            _sse(
                {"type": "message_start", "message": {"usage": {**usage, "output_tokens": 1}}},
                {"type": "message_delta", "usage": delta},
            )
        )
        assert reader.usage() == Usage(
            input_tokens=10, output_tokens=5, price_variants=ran, reported=True
        )


def test_gemini_names_the_tier_it_served_a_call_on_in_a_header():
    """x-gemini-service-tier: flex and priority have their factors; standard (what a call
    that could not get the tier it asked for falls back to) is the usual prices; a tier
    Gemini adds later, unknown. Other formats read no such header."""
    google = ADAPTERS[WireFormat.GOOGLE]
    assert google.tier_header == b"x-gemini-service-tier"
    assert google.tier_variants(b"flex") == ("flex",)
    assert google.tier_variants(b"priority") == ("priority",)
    assert google.tier_variants(b"standard") == google.tier_variants(b"") == ()
    assert google.tier_variants(b"turbo") == ("unknown",)
    assert ADAPTERS[WireFormat.OPENAI].tier_header is None
    assert ADAPTERS[WireFormat.ANTHROPIC].tier_header is None


def test_openai_answers_say_which_service_tier_they_ran_on():
    """OpenAI names the tier on every answer: a chat completion, each chunk of its stream (the
    usage chunk included), a response and its response.completed event. Flex, priority
    (or "fast") and ultrafast have their factors; default, scale and what is not a name are
    the usual prices; a tier it names that none of those is, unknown."""
    openai = ADAPTERS[WireFormat.OPENAI]
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    chat = {"choices": [], "usage": usage, "service_tier": "priority"}
    assert openai.usage_from_body(chat).price_variants == ("priority",)
    # Newer models name the priority tier "fast": the same tier, the same factor.
    fast = {**chat, "service_tier": "fast"}
    assert openai.usage_from_body(fast).price_variants == ("priority",)
    ultrafast = {**chat, "service_tier": "ultrafast"}
    assert openai.usage_from_body(ultrafast).price_variants == ("ultrafast",)
    # A tier OpenAI adds later is priced by no factor: the row's cost is unknown.
    later = {**chat, "service_tier": "hyperfast"}
    assert openai.usage_from_body(later).price_variants == ("unknown",)
    for other in ("default", "scale", "auto", "standard", None, ["flex"], {"flex": 1}, 7):
        assert openai.usage_from_body({**chat, "service_tier": other}).price_variants == ()
    reader = openai.stream_reader(client_wants_usage=False)
    reader.feed(
        _sse({"choices": [{"delta": {}}], "service_tier": "flex"}, {**chat, "service_tier": "flex"})
    )
    assert reader.usage() == Usage(
        input_tokens=10, output_tokens=5, price_variants=("flex",), reported=True
    )
    response = {"output": [], "usage": {"input_tokens": 10}, "service_tier": "flex"}
    assert openai.usage_from_body(response).price_variants == ("flex",)
    reader = openai.stream_reader(client_wants_usage=True)
    reader.feed(_sse({"type": "response.completed", "response": response}))
    assert reader.usage().price_variants == ("flex",)


ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@pytest.mark.parametrize(
    ("model", "billed"),
    [
        ("gemini-2.5-flash", 1),
        ("gemini-2.0-flash-001", 1),
        ("gemini-1.5-pro", 1),
        ("models/gemini-2.5-pro", 1),
        ("gemini-2", 1),
        ("gemini-3-pro-preview", 3),
        ("gemini-3.1-flash-lite", 3),
        ("gemini-flash-latest", 3),  # an alias of the newest models
        ("gemini-25-custom", 3),
        ("my-gemini-2.5-tune", 3),
    ],
)
def test_google_bills_gemini_2_searches_per_prompt_and_later_models_per_query(model, billed):
    google = ADAPTERS[WireFormat.GOOGLE]
    assert google.billed_searches(model, 3) == billed
    assert google.billed_searches(model, 1) == 1
    assert google.billed_searches(model, 0) == 0
    # Anthropic and OpenAI bill every search, whatever the model.
    for wire in (WireFormat.ANTHROPIC, WireFormat.OPENAI):
        assert ADAPTERS[wire].billed_searches("gemini-2.5-flash", 3) == 3


@given(
    model=st.text(max_size=60) | st.from_regex(r"(models/)?gemini-[0-9.]{1,4}-[a-z-]{0,12}"),
    searches=st.integers(min_value=0, max_value=TOKEN_COUNT_MAX),
)
def test_whatever_model_a_caller_names_the_searches_billed_are_some_of_those_run(model, searches):
    """The model is the caller's text: whatever it is, a call is billed for at most the
    searches it ran, and for at least one if it ran any."""
    billed = ADAPTERS[WireFormat.GOOGLE].billed_searches(model, searches)
    assert min(searches, 1) <= billed <= searches


@given(
    server_tool_use=ANYTHING | st.fixed_dictionaries({"web_search_requests": ANYTHING}),
    output=ANYTHING | st.lists(st.fixed_dictionaries({"type": st.just("web_search_call")})),
    candidates=ANYTHING
    | st.lists(
        st.fixed_dictionaries(
            {
                "index": ANYTHING,
                "groundingMetadata": st.fixed_dictionaries({"webSearchQueries": ANYTHING}),
            }
        ),
        max_size=3,
    ),
)
def test_a_search_count_is_always_a_whole_number_the_table_holds(
    server_tool_use, output, candidates
):
    """Whatever an answer says where the searches are counted, the count is a whole number
    from 0 to the most the column holds, and reading it never fails."""
    usages = [
        ADAPTERS[WireFormat.ANTHROPIC].usage_from_body(
            {"usage": {"server_tool_use": server_tool_use}}
        ),
        ADAPTERS[WireFormat.OPENAI].usage_from_body(
            {"output": output, "usage": {"server_tool_use": server_tool_use}}
        ),
        ADAPTERS[WireFormat.GOOGLE].usage_from_body({"candidates": candidates}),
    ]
    for wire, answer in (
        (
            WireFormat.OPENAI,
            {"type": "response.completed", "response": {"output": output, "usage": {}}},
        ),
        (
            WireFormat.GOOGLE,
            {"candidates": candidates, "usageMetadata": {}, "x": "webSearchQueries"},
        ),
    ):
        reader = ADAPTERS[wire].stream_reader(client_wants_usage=True)
        reader.feed(b"data: " + json.dumps(answer).encode() + b"\n\n")  # any integer
        usages.append(reader.usage())
    for usage in usages:
        assert type(usage.web_searches) is int and 0 <= usage.web_searches <= TOKEN_COUNT_MAX


@pytest.mark.postgres
def test_rows_wait_out_a_database_outage_and_only_shutdown_drops_them(caplog):
    """While the database refuses connections (a restart, a failover) a batch is kept at the
    head of the queue and tried again, so the rows are written once it is back, none lost.
    Only at shutdown, with no later to wait for, are they dropped, counted and logged."""
    from django.db import connection

    from gateway.usage import writer

    from .conftest import admin_sql, run

    name = connection.settings_dict["NAME"]
    caplog.set_level(logging.WARNING)

    async def outage_then_back():
        current = writer()
        admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            for i in range(30):
                current.record(event(input_tokens=i))
            await asyncio.sleep(1.5)  # the batch failed (two tries) and was kept
            kept = len(current._rows)
        finally:
            admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await current.flush()
        return kept, current.written, current.dropped

    async def outage_at_shutdown():
        current = writer()
        admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            for _ in range(5):
                current.record(event(username="late"))
            await current.close()
        finally:
            admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        return current.written, current.dropped

    assert run(outage_then_back) == (30, 30, 0)
    assert "could not write 30 usage row(s) (DatabaseUnavailable" in caplog.text
    assert "kept, next try in 2 s" in caplog.text
    assert UsageRecord.objects.filter(username="u").count() == 30
    assert run(outage_at_shutdown) == (0, 5)
    assert "could not write 5 usage row(s)" in caplog.text and "dropped at shutdown" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.sqlite
def test_rows_wait_while_another_process_holds_the_embedded_database(caplog):
    """On SQLite a writer that finds another process's write lock past the busy timeout gets
    "database is locked": the batch is kept and written once the lock is let go."""
    import sqlite3

    from django.db import connection

    caplog.set_level(logging.WARNING)
    options = connection.settings_dict["OPTIONS"]
    busy_timeout = options.get("timeout")
    options["timeout"] = 0.05  # how long each try waits for the lock
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)

    async def main():
        current = UsageWriter()
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        try:
            for i in range(12):
                current.record(event(input_tokens=i, username="held"))
            await asyncio.sleep(1.2)  # the batch failed (two tries) and was kept
            kept = len(current._rows)
        finally:
            holder.execute("ROLLBACK")
        await current.close()
        return kept, current.written, current.dropped

    try:
        assert asyncio.run(main()) == (12, 12, 0)
    finally:
        options["timeout"] = busy_timeout
        holder.close()
    assert "could not write 12 usage row(s) (OperationalError: database is locked)" in caplog.text
    assert "Traceback" not in caplog.text
    assert UsageRecord.objects.filter(username="held").count() == 12
