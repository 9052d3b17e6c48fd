"""The gateway's own pages: the home page, the games, the merged OpenAPI document and its
Swagger UI.

Swagger UI's assets come from the `swagger-ui-py` package and are served from here: FastAPI's
default docs page loads them from a CDN, which a closed network (or a strict CSP) cannot reach.
"""

from __future__ import annotations

import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.openapi import MergedOpenApi
from gateway.policy import SERVICES
from gateway.upstreams import UpstreamPool
from shared.health import run_checks

HERE = Path(__file__).resolve().parent
SWAGGER_ASSETS = Path(str(files("swagger_ui") / "static"))
HEALTH_CACHE_S = 2.0

# What each service is for, and the page a person opens (None: an API only).
SERVICE_PAGES: dict[str, tuple[str, str | None]] = {
    "auth": ("Accounts, sign-in and tokens", None),
    "quotes": ("Search and collect quotes", "/quotes/"),
    "chat": ("Chat rooms, live over WebSocket", "/chat/"),
    "feeds": ("Follow RSS and Atom feeds", None),
    "imaging": ("Make a colour transparent, thumbnails", "/imaging/"),
    "compute": ("Sorting and background jobs", None),
}
GAMES = (("Game of Life", "/play/life"), ("Snake", "/play/snake"))

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), enable_async=False
)
router = APIRouter(include_in_schema=False)


def static_mounts() -> list[tuple[str, StaticFiles, str]]:
    return [
        ("/static", StaticFiles(directory=HERE / "static"), "static"),
        ("/docs/assets", StaticFiles(directory=SWAGGER_ASSETS), "docs-assets"),
    ]


class _HealthCache:
    def __init__(self) -> None:
        self.report: dict[str, Any] = {}
        self.at = 0.0

    async def get(self, request: Request) -> dict[str, Any]:
        if time.monotonic() - self.at > HEALTH_CACHE_S:
            _, self.report = await run_checks(
                request.app.state.readiness_checks, request.state._state
            )
            self.at = time.monotonic()
        return self.report


_health = _HealthCache()


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    report = await _health.get(request)
    pools: dict[str, UpstreamPool] = request.state.upstreams
    rows = []
    for name in SERVICES:
        description, page = SERVICE_PAGES[name]
        if not pools[name].deployed:
            state, detail = "absent", "not deployed"
        else:
            entry = report.get(name, {})
            state = "ready" if entry.get("ok") else "down"
            detail = entry.get("detail") or ""
        rows.append(
            {
                "name": name,
                "description": description,
                "page": page,
                "state": state,
                "detail": detail,
            }
        )
    html = templates.get_template("home.html").render(services=rows, games=GAMES)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/play/life", response_class=HTMLResponse)
async def life() -> HTMLResponse:
    return HTMLResponse(templates.get_template("life.html").render())


@router.get("/play/snake", response_class=HTMLResponse)
async def snake() -> HTMLResponse:
    return HTMLResponse(templates.get_template("snake.html").render())


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    merged: MergedOpenApi = request.state.openapi
    return JSONResponse(await merged.get(request.state.http))


@router.get("/docs", response_class=HTMLResponse)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="tinkerstack API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )
