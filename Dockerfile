# syntax=docker/dockerfile:1
# Market Liquidity Monitor image: the API (`mlm serve`, default) and, with another command, the
# Streamlit frontend. See docs/deployment.md and docker-compose.yml.
#
#   docker build -t market-liquidity-monitor .
#   docker run --rm -p 127.0.0.1:8000:8000 market-liquidity-monitor
#
# Both stages must use the same base image: the venv built in the first is copied into the second
# at the same path and points at that image's interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# builder: the pinned dependencies into /opt/venv, then the project (editable, as in CI, so the
# non-Python files next to the code - Alembic's alembic.ini and templates - stay where they are)
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the lock changes. Every pinned
# package ships wheels for CPython 3.11 on x86_64 and aarch64 Linux, so no compiler is needed;
# --only-binary makes a missing wheel an error instead of a silent source build.
COPY requirements.txt ./
RUN pip install --only-binary=:all: -r requirements.txt

# The project: whatever .dockerignore's allow-list lets into the context (pyproject.toml,
# README.md, market_liquidity_monitor/, frontend/), each only if present.
COPY . .
RUN pip install --no-deps -e . \
    && python -m compileall -q .

# ---------------------------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="market-liquidity-monitor" \
      org.opencontainers.image.description="Liquidity analytics for crypto traders: live L2 books, market impact, venue comparison and a grounded assistant."

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLM_HOME_DIR=/app/data \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN groupadd --system --gid 10001 mlm \
    && useradd --system --uid 10001 --gid mlm --create-home --home-dir /home/mlm \
       --shell /usr/sbin/nologin mlm

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

# Code stays root-owned (read-only for the service); only the state directory is writable.
# A named volume mounted on /app/data starts with this ownership.
RUN mkdir -p /app/data && chown mlm:mlm /app/data

WORKDIR /app
USER mlm

EXPOSE 8000 8501

# No curl in the slim image: ask the API's health endpoint with the standard library, with the
# API token when one is set (every /api endpoint needs it then). The token is read from the
# environment inside the check, so it never appears in `docker inspect` or a process list.
# (The frontend container overrides this in docker-compose.yml.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; t = os.environ.get('MLM_API__TOKEN'); r = u.Request('http://127.0.0.1:8000/api/health', headers={'Authorization': 'Bearer ' + t} if t else {}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"]

CMD ["mlm", "serve", "--host", "0.0.0.0"]
