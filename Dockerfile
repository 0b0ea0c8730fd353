# syntax=docker/dockerfile:1.7
# LwaS services image: one image, three services (telemetry 8890, economy 8891, payment 8892).
#
#   docker build -t lwas:0.1.0 .                                   # ephemeral build key (see below)
#   docker build --secret id=lwas_build_key,src=build.key -t lwas:0.1.0 .   # your release key
#
# Stage `build` installs the package and compiles + signs the three service artifacts. The key
# that signs them is a BuildKit secret (never a layer); without one, a throw-away key is made in
# this stage and only its public half leaves it. Either way the runtime image holds the
# artifacts and /opt/lwas/share/build.pub, and serves with `--pubkey /opt/lwas/share/build.pub`.
# The key that signs ledger checkpoints is a different, runtime secret (LWAS_SIGNING_KEY).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/lwas
COPY pyproject.toml README.md ./
COPY lwas ./lwas
COPY runtime ./runtime
COPY lsp ./lsp
COPY grammar ./grammar
COPY stdlib ./stdlib
COPY services ./services
# A regular (not editable) install: the runtime image copies /opt/lwas and nothing from /src.
RUN /opt/lwas/bin/pip install --no-cache-dir /src
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN --mount=type=secret,id=lwas_build_key,required=false \
    set -eu; export PATH=/opt/lwas/bin:$PATH HOME=/tmp/home; mkdir -p /artifacts "$HOME"; \
    if [ -s /run/secrets/lwas_build_key ]; then key=/run/secrets/lwas_build_key; \
    else key=/tmp/ephemeral/build.key; lwasc keygen "$key"; \
         echo "warning: no lwas_build_key secret: artifacts signed with a throw-away key" >&2; fi; \
    python -c 'import sys; from lwas.backend.keys import load_private, public_pem; sys.stdout.buffer.write(public_pem(load_private(sys.argv[1])))' "$key" > /artifacts/build.pub; \
    lwasc check services/*.lwas; \
    for s in telemetry economy payment; do \
      lwasc build "services/$s.lwas" -o "/artifacts/$s.lwasart" --key "$key"; \
      lwasc verify "/artifacts/$s.lwasart" --pubkey /artifacts/build.pub > /dev/null; \
    done; \
    rm -rf /tmp/ephemeral "$HOME"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="lwas" \
      org.opencontainers.image.description="LwaS services: telemetry, economy, payment" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 lwas \
 && useradd --system --uid 10001 --gid lwas --home-dir /var/lib/lwas --shell /usr/sbin/nologin lwas \
 && install -d -o lwas -g lwas -m 0750 /var/lib/lwas
COPY --from=build /opt/lwas /opt/lwas
COPY --from=build /artifacts /opt/lwas/share
ENV PATH=/opt/lwas/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/lwas \
    XDG_CONFIG_HOME=/var/lib/lwas/.config \
    XDG_CACHE_HOME=/tmp/.cache \
    LWAS_PORT=8891
WORKDIR /var/lib/lwas
USER 10001:10001
EXPOSE 8890 8891 8892
# Liveness of whichever service runs here: set LWAS_PORT to the port it serves on.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LWAS_PORT', '8891'), timeout=2)"]
ENTRYPOINT ["lwasc", "serve"]
# The economy with a SQLite ledger in /var/lib/lwas; compose, k8s and systemd pass their own.
CMD ["/opt/lwas/share/economy.lwasart", "--host", "0.0.0.0", "--port", "8891", \
     "--db", "/var/lib/lwas/economy.db", "--pubkey", "/opt/lwas/share/build.pub"]
