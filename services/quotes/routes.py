"""HTTP endpoints of the quotes service: parse, call the service layer, answer."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.quotes.config import QuotesSettings
from services.quotes.schemas import ImportResult, Quote, QuoteIn, SearchResult
from services.quotes.service import (
    MAX_COUNT,
    MAX_QUERY_LENGTH,
    MAX_SEARCH_LIMIT,
    MAX_SEARCH_OFFSET,
    QuotesService,
)
from shared.deps import AdminUser, CurrentUser, get_settings
from shared.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType, problem_responses

router = APIRouter(prefix="/quotes", tags=["quotes"])
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

MAX_ID = 2**63 - 1


def json_response(payload: Any, status_code: int = 200) -> Response:
    """JSON straight from the rows (the documented response models only describe it): the
    list endpoints answer hundreds of quotes, where model validation would cost more than the
    query. Times in UTC with a `Z`."""
    return Response(
        orjson.dumps(payload, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        media_type="application/json",
    )


async def get_service(request: Request) -> QuotesService:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop that costs more
    # than this whole lookup.
    return request.state.quotes  # type: ignore[no-any-return]


Service = Annotated[QuotesService, Depends(get_service)]
Count = Annotated[
    int,
    Query(
        ge=1,
        description=f"How many quotes (default 1); more than {MAX_COUNT} is served as {MAX_COUNT}",
    ),
]
QuoteId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def search_page(
    request: Request,
    service: Service,
    q: Annotated[str, Query(max_length=MAX_QUERY_LENGTH)] = "",
    random: str = "",
) -> Response:
    """The search page; with `q` (or `random`) it arrives with results, for browsers without
    JavaScript; the script then keeps them in step with the query as it is typed."""
    result = random_quote = error = None
    if random:
        drawn = await service.random(count=1)
        random_quote = drawn[0] if drawn else None
    elif q.strip():
        try:
            result = await service.search(q=q, limit=20, offset=0)
        except Unprocessable as exc:
            error = exc.detail
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "q": q,
            "result": result,
            "random_quote": random_quote,
            "error": error,
            "max_query": MAX_QUERY_LENGTH,
        },
        status_code=422 if error else 200,
    )


@router.get(
    "/json/random",
    summary="Distinct random quotes, uniformly drawn",
    response_model=list[Quote],
    responses=problem_responses(422),
)
async def random_quotes(service: Service, count: Count = 1) -> Response:
    return json_response(await service.random(count=count))


@router.get(
    "/json/latest",
    summary="The newest quotes first",
    response_model=list[Quote],
    responses=problem_responses(422),
)
async def latest_quotes(service: Service, count: Count = 1) -> Response:
    return json_response(await service.latest(count=count))


@router.get(
    "/search",
    summary="Ranked full-text search",
    description='Word forms match (english stemming); `"exact phrase"`, `or` and `-word` work as '
    "in web search engines; quotes holding the query as a phrase come first. When nothing "
    "matches, misspelt words are corrected and `corrected` says to what.",
    response_model=SearchResult,
    responses=problem_responses(422),
)
async def search_quotes(
    service: Service,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH)],
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_SEARCH_OFFSET)] = 0,
) -> Response:
    return json_response(await service.search(q=q, limit=limit, offset=offset))


@router.post(
    "",
    status_code=201,
    summary="Add a quote (the same text again answers the existing quote)",
    response_model=Quote,
    responses={
        200: {
            "model": Quote,
            "description": "The text was there already (ignoring case and "
            "white space): the existing quote",
        },
        **problem_responses(401, 422),
    },
)
async def create_quote(body: QuoteIn, service: Service, user: CurrentUser) -> Response:
    result = await service.create(body=body)
    return json_response(result.quote, status_code=201 if result.created else 200)


@router.post(
    "/import",
    summary="Import a fortune(6) file",
    description="The body is a fortune file (`text/plain`, UTF-8 unless a charset says "
    "otherwise): quotes separated by lines holding only `%`; a last line `-- Name` is the author.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
    responses=problem_responses(401, 413, 415, 422),
)
async def import_quotes(request: Request, service: Service, user: CurrentUser) -> ImportResult:
    charset = _text_plain_charset(request.headers.get("content-type", ""))
    settings = await get_settings(request)
    assert isinstance(settings, QuotesSettings)
    body = await _read_limited(request, settings.import_max_bytes)
    try:
        content = body.decode(charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise Unprocessable(f"The body is not valid {charset}") from exc
    return await service.import_fortunes(content=content)


@router.get(
    "/{quote_id:int}",
    summary="One quote",
    response_model=Quote,
    responses=problem_responses(404, 422),
)
async def get_quote(quote_id: QuoteId, service: Service) -> Response:
    return json_response(await service.get(quote_id=quote_id))


@router.delete(
    "/{quote_id:int}",
    status_code=204,
    summary="Remove a quote (admin)",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_quote(quote_id: QuoteId, service: Service, user: AdminUser) -> Response:
    await service.delete(quote_id=quote_id)
    return Response(status_code=204)


def _text_plain_charset(content_type: str) -> str:
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != "text/plain":
        raise UnsupportedMediaType("The body must be a fortune file sent as text/plain")
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    try:
        codecs.lookup(charset)
    except LookupError as exc:
        raise UnsupportedMediaType(f"Unknown charset {charset!r}") from exc
    return charset


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
