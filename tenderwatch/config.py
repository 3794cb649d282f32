"""The one typed settings object: every ``TENDERWATCH_*`` environment variable is read here and nowhere else.

Per-source origin overrides (``TENDERWATCH_ESA_URL=http://127.0.0.1:8801``) are not fixed fields because
sources are open-ended (spiders, feeds); :meth:`Settings.source_origin` reads them from the environment
through the same settings object so that tests, demos and benchmarks can point any spider at a local server.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")

CommaList = Annotated[list[str], NoDecode]


def _split_list(value: object) -> object:
    """Accept ``a,b`` or a JSON list from the environment (operators type commas)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Runtime configuration; field ``foo`` is set by ``TENDERWATCH_FOO``."""

    model_config = SettingsConfigDict(env_prefix="TENDERWATCH_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty → sqlite:///<data_dir>/tenderwatch.db
    upsert_batch_size: int = 200

    # --- crawling ------------------------------------------------------------------------------
    user_agent: str = (
        "tenderwatch/0.1 (+https://github.com/tenderwatch/tenderwatch; procurement alerts for SMEs)"
    )
    contact_url: str = "https://github.com/tenderwatch/tenderwatch"
    download_delay: float = 1.0  # seconds between requests to one portal; must stay > 0 (Scrapy ≥2.14 bug)
    concurrent_requests_per_domain: int = 2
    obey_robots_txt: bool = True
    crawl_timeout_seconds: int = 1800  # a crawl subprocess is killed after this
    chromium_path: str = "/usr/bin/chromium"
    log_level: str = "WARNING"
    log_json: bool | None = None  # None → JSON when stderr is not a terminal

    # --- drift alarm ---------------------------------------------------------------------------
    drift_min_validity: float = 0.8  # share of items with each required field; below → "layout changed?"

    # --- sources ---------------------------------------------------------------------------------
    sources: CommaList = Field(default_factory=list)  # empty → every implemented source
    disabled_sources: CommaList = Field(default_factory=list)
    ted_buyers: CommaList = Field(
        default_factory=lambda: [
            "Fusion for Energy",
            "European Spallation Source",
            "European X-Ray Free-Electron Laser",
            "European XFEL",
            "European Synchrotron Radiation Facility",
            "European Molecular Biology Laboratory",
            "Facility for Antiproton and Ion Research",
            "Institut Laue-Langevin",
            "Extreme Light Infrastructure",
            "ELI ERIC",
        ]
    )
    ted_lookback_days: int = 14

    # --- TED Search API and cross-portal calls (issue #3) ----------------------------------------
    # eForms notice types asked for: prior information (planning), calls (competition) and change
    # notices ("corr", so corrigenda update the calls they change). Result notices are not calls.
    ted_notice_types: CommaList = Field(
        default_factory=lambda: [
            "pin-only",
            "pin-rtl",
            "pin-tran",
            "pin-cfc-standard",
            "pin-cfc-social",
            "qu-sy",
            "cn-standard",
            "cn-social",
            "cn-desg",
            "subco",
            "corr",
        ]
    )
    ted_scope: str = "ALL"  # ALL | ACTIVE | LATEST; the look-back window already bounds the result
    ted_page_size: int = 250  # TED's maximum; lowered automatically so limit × fields ≤ 10,000
    ted_max_retries: int = 5  # HTTP 429 answers retried per page before the run fails
    ted_backoff_seconds: float = 5.0  # first wait after a 429 without Retry-After; doubles each time
    ted_max_wait_seconds: float = 300.0  # cap on one wait (a huge Retry-After must not stall the service)
    merge_title_threshold: float = 88.0  # rapidfuzz score (0-100) for the title + deadline + buyer rule

    # --- HTML spiders, browser, politeness, recordings (issue 4) ------------------------------
    browser_sources: CommaList = Field(default_factory=list)  # extra sources rendered in Chromium
    retry_backoff_base: float = 2.0  # seconds; retry n waits base * 2**(n-1) unless Retry-After says
    retry_backoff_max: float = 300.0  # cap on one wait (also caps Retry-After)
    check_item_limit: int = 20  # `tenderwatch check` stops after this many items per source

    # --- conditional requests (issue #9 P2): Scrapy's HTTP cache, revalidated on every crawl --------
    http_cache: bool = True  # off → every crawl downloads every page in full
    http_cache_dir: Path | None = None  # None → <data_dir>/httpcache; one sub-directory per source
    http_cache_expire_days: int = 30  # entries not revalidated for this long are deleted; 0 → kept

    # --- scheduler -----------------------------------------------------------------------------
    crawl_interval_seconds: int = 7200
    crawl_jitter_seconds: int = 600
    dispatch_interval_seconds: int = 60
    source_failure_threshold: int = 3
    operator_urls: CommaList = Field(default_factory=list)  # apprise URLs; secrets

    # --- service (tenderwatch run: scheduler, leader lock, health; issue 7) --------------------
    # per-source schedule: {"esa": "*/30 * * * *"} (crontab, UTC) or {"ted": "3600"} (interval seconds);
    # sources not listed use crawl_interval_seconds ± crawl_jitter_seconds
    source_schedules: dict[str, str] = Field(default_factory=dict)
    reminder_interval_seconds: int = 3600  # how often deadline reminders are created
    crawl_poll_seconds: float = 5.0  # how often "crawl now" requests from the web admin are picked up
    heartbeat_seconds: float = 10.0  # leader/standby heartbeat; /healthz wants one within 3× this
    standby_poll_seconds: float = 2.0  # how often a hot standby retries the leader lock
    misfire_grace_seconds: int = 3600  # a job late by less than this (busy or sleeping host) still runs
    stop_grace_seconds: float = 20.0  # a crawl subprocess gets this long to close after SIGTERM

    # --- alerts --------------------------------------------------------------------------------
    smtp_url: SecretStr | None = None  # smtp://user:pass@host:587 or smtps://…
    mail_from: str = "tenderwatch <alerts@tenderwatch.invalid>"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr("change-me-in-production")
    max_attempts: int = 8
    reminder_days: list[int] = Field(default_factory=lambda: [7, 1])
    # alert dispatch (alerts issue): retry back-off and the claim timeout after which a crashed
    # dispatcher's claimed deliveries are taken over by another one
    dispatch_backoff_seconds: int = 60  # first retry after this, then doubling
    dispatch_backoff_max_seconds: int = 6 * 3600
    dispatch_claim_timeout_seconds: int = 600  # must exceed the longest send of one batch
    # outcomes of this many messages are recorded in one transaction (also at the end of each claim);
    # a dispatcher killed outright may resend at most this many messages
    dispatch_record_every: int = 50

    # --- web -----------------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # web admin (issue #8): session lifetime, OCDS ocid prefix, how long feedback links stay valid
    web_session_max_age_seconds: int = 12 * 3600
    ocds_prefix: str = "ocds-tndrwt"
    feedback_link_max_age_days: int = 180

    _split = field_validator(
        "sources",
        "disabled_sources",
        "ted_buyers",
        "ted_notice_types",
        "operator_urls",
        "browser_sources",
        mode="before",
    )(_split_list)

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tenderwatch.db').as_posix()}"

    @property
    def effective_http_cache_dir(self) -> Path:
        """Where crawls keep pages and their validators (``http_cache_dir`` or ``<data_dir>/httpcache``)."""
        return self.http_cache_dir or self.data_dir / "httpcache"

    @staticmethod
    def source_origin(source: str) -> str | None:
        """Origin override for one source (``TENDERWATCH_<SOURCE>_URL``), without trailing slash.

        Characters an environment variable cannot hold become ``_`` (``feed:ilo-dk`` → ``FEED_ILO_DK``)."""
        key = f"TENDERWATCH_{re.sub(r'[^A-Z0-9]', '_', source.upper())}_URL"
        value = os.environ.get(key, "").strip()
        return value.rstrip("/") or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
