# tenderwatch service image: `tenderwatch run` (scheduler + web admin) on Debian with Chromium for the
# portals that need a browser (Playwright drives Debian's chromium; `playwright install` is not used).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TENDERWATCH_CHROMIUM_PATH=/usr/bin/chromium \
    TENDERWATCH_DATA_DIR=/data \
    TENDERWATCH_WEB_HOST=0.0.0.0 \
    TENDERWATCH_WEB_PORT=8000 \
    TENDERWATCH_LOG_JSON=true

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tenderwatch ./tenderwatch
RUN pip install . && useradd --system --home-dir /data --create-home tenderwatch

USER tenderwatch
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
# tini forwards SIGTERM to tenderwatch, which stops gracefully (crawls closed, lock released)
ENTRYPOINT ["tini", "--", "tenderwatch"]
# `run` applies pending migrations before it starts
CMD ["run"]
