"""Random quotes are uniform and spread: a chi-square test over many draws from a small table,
and a 200-quote sample that is not a run of neighbouring rows."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from statistics import NormalDist

import httpx2

from services.quotes.repository import draw_distinct
from tests.services.quotes.helpers import add_quotes, connect
from tests.support.stores import Stores

# A wrong test rejects a uniform sampler once in 10,000 runs.
ALPHA = 1e-4


def chi_square_critical(df: int, alpha: float = ALPHA) -> float:
    """The (1 - alpha) quantile of chi-square with `df` degrees of freedom (Wilson–Hilferty,
    within a fraction of a percent for df ≥ 10)."""
    z = NormalDist().inv_cdf(1 - alpha)
    return float(df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3)


def chi_square(counts: Counter[int], cells: list[int]) -> float:
    expected = sum(counts.values()) / len(cells)
    return sum((counts[cell] - expected) ** 2 / expected for cell in cells)


def test_the_critical_value_matches_tables() -> None:
    # Tabulated: df=19 at 0.001 → 43.82; df=29 at 0.0001 → 66.62.
    assert abs(chi_square_critical(19, 0.001) - 43.82) < 0.3
    assert abs(chi_square_critical(29, 0.0001) - 66.62) < 0.5


async def test_single_draws_are_uniform(client: httpx2.AsyncClient, stores: Stores) -> None:
    ids = await add_quotes(stores, [f"uniform quote {i}" for i in range(20)])
    counts: Counter[int] = Counter()
    for _ in range(2000):
        [quote] = (await client.get("/quotes/json/random")).json()
        counts[quote["id"]] += 1
    assert set(counts) == set(ids)
    assert chi_square(counts, ids) < chi_square_critical(len(ids) - 1)


async def test_multi_draws_are_uniform_per_quote_and_per_position(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    ids = await add_quotes(stores, [f"spread quote {i}" for i in range(30)])
    counts: Counter[int] = Counter()
    firsts: Counter[int] = Counter()
    for _ in range(600):
        drawn = [q["id"] for q in (await client.get("/quotes/json/random?count=7")).json()]
        assert len(set(drawn)) == 7
        counts.update(drawn)
        firsts[drawn[0]] += 1
    assert chi_square(counts, ids) < chi_square_critical(len(ids) - 1)
    # The order is random too: the first place is not biased towards any quote.
    assert chi_square(firsts, ids) < chi_square_critical(len(ids) - 1)


async def test_a_200_sample_is_not_a_run_of_neighbours(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    ids = await add_quotes(stores, [f"neighbour quote {i}" for i in range(2000)])
    drawn = sorted(q["id"] for q in (await client.get("/quotes/json/random?count=200")).json())
    assert len(set(drawn)) == 200
    # 200 of 2,000 drawn uniformly: about 20 adjacent pairs expected; a block has 199.
    adjacent = sum(1 for a, b in itertools.pairwise(drawn) if b - a == 1)
    assert adjacent < 60
    assert drawn[-1] - drawn[0] > 1000
    assert drawn[0] >= ids[0]


def test_draw_distinct_covers_the_range_and_respects_exclusions() -> None:
    assert sorted(draw_distinct(5, 10, set())) == [1, 2, 3, 4, 5]
    assert sorted(draw_distinct(6, 6, {2, 4})) == [1, 3, 5, 6]
    assert draw_distinct(3, 2, {1, 2, 3}) == []
    big = draw_distinct(1_000_000, 200, {1, 2})
    assert len(set(big)) == 200
    assert all(3 <= n <= 1_000_000 for n in big)


async def test_gaps_in_the_numbering_are_drawn_around(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    ids = await add_quotes(stores, [f"gappy quote {i}" for i in range(40)])
    # Rows removed behind the service's back leave free numbers (as a concurrent delete may,
    # for a moment): draws that land on them are drawn again.
    conn = await connect(stores)
    try:
        await conn.execute("DELETE FROM quote WHERE id = ANY($1::bigint[])", ids[::3])
    finally:
        await conn.close()
    left = set(ids) - set(ids[::3])
    for _ in range(10):
        drawn = [q["id"] for q in (await client.get("/quotes/json/random?count=200")).json()]
        assert len(drawn) == len(set(drawn))
        assert set(drawn) == left
    for _ in range(100):
        [quote] = (await client.get("/quotes/json/random")).json()
        assert quote["id"] in left


async def test_a_table_of_mostly_free_numbers_still_yields_its_quotes(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    """Draws that land on free numbers are made up for by further draws, not lost: one quote
    left among 40 numbers is found every time."""
    ids = await add_quotes(stores, [f"lonely quote {i}" for i in range(40)])
    conn = await connect(stores)
    try:
        await conn.execute("DELETE FROM quote WHERE id <> $1", ids[17])
    finally:
        await conn.close()
    for count in (1, 1, 1, 5, 200):
        drawn = [q["id"] for q in (await client.get(f"/quotes/json/random?count={count}")).json()]
        assert drawn == [ids[17]]
