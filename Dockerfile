# syntax=docker/dockerfile:1.7
# One image for every Python process of the stack: the gateway, each service, and `setup`.
# docker-compose.yml picks the process with `command`.

# -- build: the locked environment, including the native extension (C++, built by uv sync) --
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Third-party dependencies first: this layer changes only with the lock file.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project --no-install-local
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# -- runtime: no compiler, no uv, a user without privileges --
FROM python:3.11-slim-bookworm AS runtime
# Debian's fortunes: the quotes service's first-run data (`python -m services.quotes setup`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fortunes \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
# Owned by root: the processes can read their code but not change it.
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production
USER app
EXPOSE 8000
CMD ["python", "-m", "gateway"]
