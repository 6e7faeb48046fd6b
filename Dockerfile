# syntax=docker/dockerfile:1
# Two images from one Dockerfile:
#   runtime (the default target, the last stage): what runs in ECS, the services only. The command picks which:
#     docker run IMAGE                                  -> python -m owner_service (the default)
#     docker run IMAGE python -m sales_consumer         -> the sales consumer (likewise finance_consumer)
#   tools (--target tools): the runtime plus the development tooling (keyfan_tools: the `keyfan` command and
#     the local stack's provisioning) and iac/; docker compose's provisioner and generator run it.
#     docker run IMAGE keyfan local ...                 -> the CLI
# Pin the base image by digest for production (python:3.11.14-slim-bookworm@sha256:...).

# ---------------------------------------------------------------- builder: wheels only
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependencies first (cached until requirements.lock changes): every runtime dependency, exact versions.
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels --requirement requirements.lock
# Then Keyfan itself, without re-resolving its dependencies: the core and the apps, and nothing else, so
# this wheel is the runtime's ...
COPY pyproject.toml README.m[d] departments.toml ./
COPY keyfan ./keyfan
COPY owner_service ./owner_service
COPY sales_consumer ./sales_consumer
COPY finance_consumer ./finance_consumer
COPY lambda_generator ./lambda_generator
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /keyfan/runtime .
# ... and the same project with its tooling is the tools image's.
COPY keyfan_tools ./keyfan_tools
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /keyfan/tools .

# ---------------------------------------------------------------- base: the dependencies, the user, the registry
FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KEYFAN_DEPARTMENTS_FILE=/app/departments.toml \
    KEYFAN_DATA_DIR=/app/.keyfan/faust \
    KEYFAN_WEB_PORT=6066
# The wheels are bind-mounted from the builder, never copied into a layer; --no-index installs exactly the
# pinned wheels.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,from=builder,source=/src/requirements.lock,target=/tmp/requirements.lock \
    pip install --no-cache-dir --no-index --find-links=/wheels --requirement /tmp/requirements.lock \
    && useradd --system --create-home --uid 10001 --user-group keyfan \
    && mkdir -p /app/.keyfan/faust /keyfan-state \
    && chown -R keyfan:keyfan /app /keyfan-state
WORKDIR /app
COPY --chown=keyfan:keyfan departments.toml ./

# ---------------------------------------------------------------- tools: runtime + keyfan_tools (compose only)
FROM base AS tools
RUN --mount=type=bind,from=builder,source=/keyfan/tools,target=/keyfan \
    pip install --no-cache-dir --no-index --no-deps /keyfan/keyfan-*.whl
# The templates `keyfan local provision` (and the compose provisioner) deploy into moto.
COPY --chown=keyfan:keyfan iac/*.yaml ./iac/
USER 10001:10001
CMD ["keyfan", "--help"]

# ---------------------------------------------------------------- runtime: no compiler, no pip cache, no root, no tooling
FROM base AS runtime
# Keyfan's dependencies are in base (requirements.lock satisfies its ranges). The wheel declares the `keyfan`
# console script, a development tool whose package (keyfan_tools) is not in this image: it is removed.
RUN --mount=type=bind,from=builder,source=/keyfan/runtime,target=/keyfan \
    pip install --no-cache-dir --no-index --no-deps /keyfan/keyfan-*.whl \
    && rm /usr/local/bin/keyfan
USER 10001:10001
EXPOSE 6066
# The Faust web server serves /metrics; slim images have no curl, so ask Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KEYFAN_WEB_PORT', '6066') + '/metrics', timeout=3)"]
CMD ["python", "-m", "owner_service"]
