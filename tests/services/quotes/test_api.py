"""Every rule of the quotes API (API.md § Quotes), against the service on a real socket and a real
PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from tests.services.quotes.conftest import IMPORT_MAX_BYTES
from tests.services.quotes.helpers import (
    CLASSICS,
    add_quotes,
    connect,
    empty_tables,
    migrate,
    running_quotes,
)
from tests.support.stores import Stores
from tests.support.tokens import TokenIssuer

PROBLEM = "application/problem+json"
QUOTE_FIELDS = {"id", "text", "author", "source", "added_at"}


def assert_problem(response: httpx2.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


async def quote_rows(stores: Stores) -> int:
    conn = await connect(stores)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM quote"))
    finally:
        await conn.close()


# --- random and latest -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random", "latest"])
async def test_count_defaults_to_one(client: httpx2.AsyncClient, stores: Stores, kind: str) -> None:
    await add_quotes(stores, [f"quote number {i}" for i in range(5)])
    response = await client.get(f"/quotes/json/{kind}")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 1
    assert set(body[0]) == QUOTE_FIELDS
    assert body[0]["added_at"].endswith("Z") or body[0]["added_at"].endswith("+00:00")


@pytest.mark.parametrize("kind", ["random", "latest"])
async def test_count_above_200_is_capped(
    client: httpx2.AsyncClient, stores: Stores, kind: str
) -> None:
    await add_quotes(stores, [f"capped quote {i}" for i in range(230)])
    for count in (201, 500, 10**30):
        response = await client.get(f"/quotes/json/{kind}", params={"count": count})
        assert response.status_code == 200
        ids = [quote["id"] for quote in response.json()]
        assert len(ids) == 200
        assert len(set(ids)) == 200


@pytest.mark.parametrize("kind", ["random", "latest"])
@pytest.mark.parametrize("count", ["0", "-1", "abc", "1.5", ""])
async def test_bad_count_is_422(
    client: httpx2.AsyncClient, stores: Stores, kind: str, count: str
) -> None:
    await add_quotes(stores, ["one quote"])
    response = await client.get(f"/quotes/json/{kind}", params={"count": count})
    body = assert_problem(response, 422)
    assert body["instance"] == f"/quotes/json/{kind}"
    assert body["errors"]


async def test_random_quotes_are_distinct_and_fewer_when_the_table_is_small(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    ids = await add_quotes(stores, [f"small table quote {i}" for i in range(5)])
    for _ in range(20):
        response = await client.get("/quotes/json/random", params={"count": 10})
        got = [quote["id"] for quote in response.json()]
        assert sorted(got) == sorted(ids)
    response = await client.get("/quotes/json/random", params={"count": 3})
    got = [quote["id"] for quote in response.json()]
    assert len(got) == 3
    assert len(set(got)) == 3
    assert set(got) <= set(ids)


async def test_random_and_latest_on_an_empty_table(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/quotes/json/random", params={"count": 5})).json() == []
    assert (await client.get("/quotes/json/latest", params={"count": 5})).json() == []


async def test_latest_are_the_newest_first(client: httpx2.AsyncClient, stores: Stores) -> None:
    ids = []
    for i in range(6):
        ids += await add_quotes(stores, [f"added in order {i}"])
    response = await client.get("/quotes/json/latest", params={"count": 4})
    body = response.json()
    assert [quote["id"] for quote in body] == ids[::-1][:4]
    assert body[0]["text"] == "added in order 5"
    times = [quote["added_at"] for quote in body]
    assert times == sorted(times, reverse=True)


# --- get ---------------------------------------------------------------------------------------


async def test_get_a_quote_and_404_for_unknown(client: httpx2.AsyncClient, stores: Stores) -> None:
    [quote_id] = await add_quotes(stores, ["A quote to fetch by id."])
    response = await client.get(f"/quotes/{quote_id}")
    assert response.status_code == 200
    assert response.json()["text"] == "A quote to fetch by id."
    assert_problem(await client.get(f"/quotes/{quote_id + 1000}"), 404)
    assert_problem(await client.get("/quotes/0"), 422)
    assert_problem(await client.get(f"/quotes/{2**70}"), 422)
    # Only digits name a quote: anything else is no quote at all.
    assert_problem(await client.get("/quotes/abc"), 404)
    assert_problem(await client.get("/quotes/-1"), 404)


async def test_a_method_a_path_lacks_is_405_naming_the_ones_it_has(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    """`search` and `import` are not quote ids: their paths are routes of their own, not
    /quotes/{quote_id} (which would answer DELETE /quotes/search with 403 or 422)."""
    for method, path, allowed in [
        ("DELETE", "/quotes/search", "GET"),
        ("GET", "/quotes/import", "POST"),
        ("PUT", "/quotes/1", "DELETE, GET"),
    ]:
        response = await client.request(method, path, headers=auth)
        assert_problem(response, 405)
        assert response.headers["allow"] == allowed
    assert await quote_rows(stores) == 0


# --- search ------------------------------------------------------------------------------------


async def test_search_puts_the_exact_phrase_first(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    await add_quotes(
        stores,
        [
            "Software should be free, and free software makes users free: free, free, free.",
            "Free advice is worth what you pay for it; software too.",
            "Nothing here matches at all.",
            "The best software is free software.",
        ],
    )
    response = await client.get("/quotes/search", params={"q": "free software"})
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    texts = [item["text"] for item in body["items"]]
    phrase_first = {texts[0], texts[1]}
    assert phrase_first == {
        "Software should be free, and free software makes users free: free, free, free.",
        "The best software is free software.",
    }
    assert texts[2] == "Free advice is worth what you pay for it; software too."
    ranks = [item["rank"] for item in body["items"]]
    assert ranks == sorted(ranks, reverse=True)


async def test_search_matches_word_forms_and_highlights_them(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    await add_quotes(stores, ["He was running faster than the wind.", "Cats sleep all day."])
    body = (await client.get("/quotes/search", params={"q": "runs"})).json()
    assert body["total"] == 1
    assert body["items"][0]["snippet"] == "He was <mark>running</mark> faster than the wind."


async def test_search_snippet_is_escaped_html(client: httpx2.AsyncClient, stores: Stores) -> None:
    await add_quotes(
        stores, ['Never trust <script>alert("x")</script> & scripts you did not write.']
    )
    body = (await client.get("/quotes/search", params={"q": "trust"})).json()
    snippet = body["items"][0]["snippet"]
    assert "<script" not in snippet
    assert "<mark>trust</mark>" in snippet
    assert "&amp;" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


async def test_search_corrects_a_misspelt_word(client: httpx2.AsyncClient, stores: Stores) -> None:
    await add_quotes(stores, ["Wisdom begins in wonder.", "Patience is bitter, its fruit sweet."])
    body = (await client.get("/quotes/search", params={"q": "wisdon"})).json()
    assert body["corrected"] == "wisdom"
    assert body["total"] == 1
    assert "<mark>Wisdom</mark>" in body["items"][0]["snippet"]
    nothing = (await client.get("/quotes/search", params={"q": "zzqxv"})).json()
    assert nothing == {"total": 0, "items": [], "corrected": None}


async def test_search_pages_with_limit_and_offset(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    await add_quotes(stores, [f"Dogs bark, number {i} of many." for i in range(25)])
    first = (await client.get("/quotes/search", params={"q": "dog", "limit": 10})).json()
    rest = (await client.get("/quotes/search", params={"q": "dog", "offset": 20})).json()
    beyond = (await client.get("/quotes/search", params={"q": "dog", "offset": 100})).json()
    assert (first["total"], len(first["items"])) == (25, 10)
    assert (rest["total"], len(rest["items"])) == (25, 5)
    assert (beyond["total"], beyond["items"]) == (25, [])
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in rest["items"]}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x", "limit": 101},
        {"q": "x", "limit": 0},
        {"q": "x", "offset": -1},
        {"q": "x" * 501},
    ],
)
async def test_search_refuses_bad_input(
    client: httpx2.AsyncClient, params: dict[str, object]
) -> None:
    assert_problem(await client.get("/quotes/search", params=params), 422)


async def test_search_survives_odd_queries(client: httpx2.AsyncClient, stores: Stores) -> None:
    await add_quotes(stores, ["To be or not to be, that is the question."])
    for q in ["to be or not to be", '"unclosed', "-", "a & b | !c", "(", "'", "question:*"]:
        response = await client.get("/quotes/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)
    body = (await client.get("/quotes/search", params={"q": '"the question"'})).json()
    assert body["total"] == 1


# --- create ------------------------------------------------------------------------------------


async def test_create_needs_a_token(client: httpx2.AsyncClient, stores: Stores) -> None:
    response = await client.post("/quotes", json={"text": "Anonymous wisdom."})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    bad = await client.post(
        "/quotes", json={"text": "x"}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert_problem(bad, 401)
    assert await quote_rows(stores) == 0


async def test_create_and_dedupe_by_normalised_text(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    created = await client.post(
        "/quotes",
        json={"text": "Simplicity is prerequisite for reliability.", "author": "E. W. Dijkstra"},
        headers=auth,
    )
    assert created.status_code == 201
    quote = created.json()
    assert set(quote) == QUOTE_FIELDS
    assert quote["author"] == "E. W. Dijkstra"
    again = await client.post(
        "/quotes",
        json={"text": "  SIMPLICITY is\n prerequisite   for reliability. "},
        headers=auth,
    )
    assert again.status_code == 200
    assert again.json() == quote
    assert await quote_rows(stores) == 1
    assert (await client.get(f"/quotes/{quote['id']}")).json() == quote


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "   \n "},
        {"text": "x" * 10_001},
        {"text": 5},
        {"text": "ok", "author": "a" * 201},
    ],
)
async def test_create_refuses_bad_bodies(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str], body: dict[str, object]
) -> None:
    assert_problem(await client.post("/quotes", json=body, headers=auth), 422)
    assert await quote_rows(stores) == 0


async def test_create_drops_control_characters(
    client: httpx2.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post("/quotes", json={"text": "nul\x00 and\x1b bell\x07"}, headers=auth)
    assert response.status_code == 201
    assert response.json()["text"] == "nul and bell"


# --- import ------------------------------------------------------------------------------------


async def test_import_a_fortune_file(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    content = CLASSICS.read_bytes()
    headers = {**auth, "Content-Type": "text/plain; charset=utf-8"}
    first = await client.post("/quotes/import", content=content, headers=headers)
    assert first.status_code == 200
    # 10 quotes, one of them repeated with other case and spacing; one empty entry.
    assert first.json() == {"added": 9, "skipped": 1}
    assert await quote_rows(stores) == 9
    second = await client.post("/quotes/import", content=content, headers=headers)
    assert second.json() == {"added": 0, "skipped": 10}
    found = (await client.get("/quotes/search", params={"q": "investment knowledge"})).json()
    assert found["items"][0]["author"] == "Benjamin Franklin"
    assert found["items"][0]["text"] == "An investment in knowledge pays the best interest."


async def test_import_refuses_wrong_type_size_and_anonymous(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    content = CLASSICS.read_bytes()
    assert_problem(await client.post("/quotes/import", content=content), 401)
    wrong_type = await client.post(
        "/quotes/import", content=content, headers={**auth, "Content-Type": "application/json"}
    )
    assert_problem(wrong_type, 415)
    no_type = await client.post("/quotes/import", content=content, headers=auth)
    assert_problem(no_type, 415)
    huge = b"Too much.\n%\n" * (IMPORT_MAX_BYTES // 12 + 10)
    too_big = await client.post(
        "/quotes/import", content=huge, headers={**auth, "Content-Type": "text/plain"}
    )
    assert_problem(too_big, 413)

    async def chunks() -> object:
        for _ in range(IMPORT_MAX_BYTES // 1000 + 5):
            yield b"x" * 999 + b"\n"

    streamed = await client.post(
        "/quotes/import", content=chunks(), headers={**auth, "Content-Type": "text/plain"}
    )
    assert_problem(streamed, 413)
    latin = await client.post(
        "/quotes/import",
        content=b"\xff\xfe not utf-8",
        headers={**auth, "Content-Type": "text/plain"},
    )
    assert_problem(latin, 422)
    assert await quote_rows(stores) == 0


async def test_import_respects_the_charset(
    client: httpx2.AsyncClient, auth: dict[str, str]
) -> None:
    content = "Café au lait, s'il vous plaît.\n%\n".encode("latin-1")
    response = await client.post(
        "/quotes/import",
        content=content,
        headers={**auth, "Content-Type": "text/plain; charset=ISO-8859-1"},
    )
    assert response.json() == {"added": 1, "skipped": 0}
    latest = (await client.get("/quotes/json/latest")).json()
    assert latest[0]["text"] == "Café au lait, s'il vous plaît."


# --- delete (admin) ----------------------------------------------------------------------------


async def test_delete_needs_admin_and_keeps_random_complete(
    client: httpx2.AsyncClient, stores: Stores, issuer: TokenIssuer, auth: dict[str, str]
) -> None:
    ids = await add_quotes(stores, [f"deletable {i}" for i in range(10)])
    assert_problem(await client.delete(f"/quotes/{ids[3]}", headers=auth), 403)
    admin = {"Authorization": f"Bearer {issuer.issue(roles=('admin',))}"}
    for quote_id in (ids[3], ids[0], ids[9]):
        assert (await client.delete(f"/quotes/{quote_id}", headers=admin)).status_code == 204
    assert_problem(await client.delete(f"/quotes/{ids[3]}", headers=admin), 404)
    assert_problem(await client.get(f"/quotes/{ids[3]}"), 404)
    left = set(ids) - {ids[3], ids[0], ids[9]}
    for _ in range(5):
        drawn = (await client.get("/quotes/json/random", params={"count": 50})).json()
        assert {quote["id"] for quote in drawn} == left


async def test_openapi_documents_the_errors(client: httpx2.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "422" in paths["/quotes/json/random"]["get"]["responses"]
    assert "404" in paths["/quotes/{quote_id}"]["get"]["responses"]
    assert {"401", "413", "415"} <= set(paths["/quotes/import"]["post"]["responses"])
    assert {"200", "201", "401", "422"} <= set(paths["/quotes"]["post"]["responses"])


async def test_a_body_that_is_not_utf8_is_malformed_json(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/quotes",
        content=b'{"text": "\xe9t\xe9"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_problem(response, 422)
    assert await quote_rows(stores) == 0


async def test_search_page_renders_results_without_javascript(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    await add_quotes(stores, ["Wisdom begins in <wonder>.", "Nothing else."])
    page = await client.get("/quotes/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<label for="q">' in page.text
    found = await client.get("/quotes/", params={"q": "wisdom"})
    assert "<mark>Wisdom</mark> begins in &lt;wonder&gt;." in found.text
    assert "1 quote found." in found.text
    refused = await client.get("/quotes/", params={"q": "-wisdom"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")
    assert "Search failed: q: the query only leaves words out" in refused.text
    drawn = await client.get("/quotes/", params={"random": "1"})
    assert "A random quote." in drawn.text
    script = await client.get("/quotes/static/quotes.js")
    assert script.status_code == 200


async def test_one_word_search_ranks_every_match_by_ts_rank(
    client: httpx2.AsyncClient, stores: Stores, issuer: TokenIssuer
) -> None:
    ids = await add_quotes(
        stores,
        [
            "Time is money.",
            "Time, time, time: see what's become of me.",
            "There is never enough time to do it right, but always time to do it over.",
            "Lost time is never found again, said the time keeper about time.",
            "Nothing about clocks here.",
        ],
    )
    one_word = (await client.get("/quotes/search", params={"q": "times"})).json()
    # Served from the precomputed ranks; the same as ranking every match with ts_rank.
    conn = await connect(stores)
    try:
        expected = await conn.fetch(
            """SELECT id, ts_rank(search, 'time')::float8 + 1 AS rank FROM quote
               WHERE search @@ 'time' ORDER BY rank DESC, id DESC"""
        )
    finally:
        await conn.close()
    assert one_word["total"] == 4
    assert [i["id"] for i in one_word["items"]] == [row["id"] for row in expected]
    assert [i["rank"] for i in one_word["items"]] == pytest.approx([r["rank"] for r in expected])
    assert one_word["items"][0]["snippet"].count("<mark>") >= 3

    admin = {"Authorization": f"Bearer {issuer.issue(roles=('admin',))}"}
    await client.delete(f"/quotes/{ids[1]}", headers=admin)
    after = (await client.get("/quotes/search", params={"q": "time"})).json()
    assert after["total"] == 3
    assert ids[1] not in {item["id"] for item in after["items"]}
    paged = (await client.get("/quotes/search", params={"q": "time", "offset": 2})).json()
    assert (paged["total"], len(paged["items"])) == (3, 1)


async def test_a_query_that_only_excludes_words_is_422(client: httpx2.AsyncClient) -> None:
    body = assert_problem(await client.get("/quotes/search", params={"q": "-love"}), 422)
    assert "leaves words out" in str(body["detail"])


async def test_a_long_quote_is_shown_by_its_fragments(
    client: httpx2.AsyncClient, stores: Stores
) -> None:
    filler = " ".join(f"filler{i}" for i in range(150))
    await add_quotes(stores, [f"{filler} the needle is here {filler} and the end."])
    [hit] = (await client.get("/quotes/search", params={"q": "needle"})).json()["items"]
    assert "<mark>needle</mark>" in hit["snippet"]
    assert hit["snippet"].startswith("… ")
    assert hit["snippet"].endswith(" …")
    assert len(hit["snippet"]) < len(hit["text"]) / 2


async def test_concurrent_creates_of_one_text_store_it_once(
    client: httpx2.AsyncClient, stores: Stores, auth: dict[str, str]
) -> None:
    texts = [
        f"Race {'  ' * i}condition,   SAME text." if i % 2 else "race condition, same TEXT."
        for i in range(12)
    ]
    responses = await asyncio.gather(
        *(client.post("/quotes", json={"text": text}, headers=auth) for text in texts)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 11 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await quote_rows(stores) == 1
    drawn = (await client.get("/quotes/json/random", params={"count": 5})).json()
    assert len(drawn) == 1


async def test_a_search_too_slow_to_rank_is_cancelled_with_422(stores: Stores) -> None:
    await migrate(stores)
    await empty_tables(stores)
    await add_quotes(stores, [f"Cats and dogs, tale number {i}." for i in range(50)])
    # A deadline no query of several words can meet stands in for a query over millions of rows.
    async with (
        running_quotes(stores, search_timeout_seconds=1e-6) as base_url,
        httpx2.AsyncClient(base_url=base_url) as client,
    ):
        body = assert_problem(await client.get("/quotes/search?q=cats+or+dogs"), 422)
        assert "too many quotes" in str(body["detail"])
        # One-word searches do not rank every match, and still answer.
        assert (await client.get("/quotes/search?q=cats")).json()["total"] == 50
        # The cancelled query left the pool usable.
        assert (await client.get("/quotes/json/random?count=3")).status_code == 200
