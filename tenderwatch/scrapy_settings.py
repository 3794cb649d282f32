"""Scrapy settings built from the one typed :class:`~tenderwatch.config.Settings` object.

Each value says its Scrapy default and why we differ (kingfisher-collect style).
"""

from __future__ import annotations

from typing import Any

from tenderwatch.config import Settings
from tenderwatch.httpcache import MIDDLEWARE as CACHE_MIDDLEWARE
from tenderwatch.httpcache import cache_settings

#: a built-in extension tenderwatch switches off (``REMOTE_CONTROL_ENABLED``)
REMOTE_CONTROL = "scrapy.extensions.remote_control.RemoteControl"


def scrapy_settings(settings: Settings) -> dict[str, Any]:
    return {
        "BOT_NAME": "tenderwatch",
        "SPIDER_MODULES": ["tenderwatch.spiders"],
        # politeness: portals are public services run by small teams
        "ROBOTSTXT_OBEY": settings.obey_robots_txt,  # default False
        "USER_AGENT": settings.user_agent,
        "DOWNLOAD_DELAY": max(settings.download_delay, 0.001),  # default 0; >0 also works around the
        # Scrapy ≥2.14 bug where CONCURRENT_REQUESTS_PER_DOMAIN is ignored when the delay is 0
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.concurrent_requests_per_domain,  # default 8
        "CONCURRENT_REQUESTS": 16,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 3,  # default 2
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "DOWNLOAD_TIMEOUT": 60,  # default 180: a portal that slow is down
        # quiet service: no listeners we do not use
        "TELNETCONSOLE_ENABLED": False,  # default True (port 6023+)
        "REMOTE_CONTROL_ENABLED": False,  # default True (aiohttp server on a random port)
        "LOG_LEVEL": settings.log_level,
        # retries wait (exponential backoff, Retry-After honoured) instead of hammering a failing portal
        "TENDERWATCH_RETRY_BACKOFF_BASE": settings.retry_backoff_base,
        "TENDERWATCH_RETRY_BACKOFF_MAX": settings.retry_backoff_max,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "tenderwatch.middlewares.BackoffRetryMiddleware": 550,
            # last before the download handler, so every other middleware sees the real URL
            "tenderwatch.middlewares.OriginOverrideMiddleware": 950,
            # conditional requests (tenderwatch.httpcache): after the override, so one lookup per
            # request; off while recording or replaying
            "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
            CACHE_MIDDLEWARE: 952,
            # record/replay (off unless TENDERWATCH_RECORD_DIR / TENDERWATCH_REPLAY_DIR is set)
            "tenderwatch.recording.RecordMiddleware": 955,
            "tenderwatch.recording.ReplayMiddleware": 960,
        },
        "ITEM_PIPELINES": {
            "tenderwatch.pipelines.ValidatePipeline": 100,
            "tenderwatch.pipelines.ClassifyPipeline": 200,
            "tenderwatch.pipelines.StorePipeline": 300,
        },
        "EXTENSIONS": {
            "tenderwatch.extensions.CrawlRunRecorder": 100,
            "tenderwatch.progress.ProgressReporter": 200,
        },
        "EXTENSIONS_BASE": _extensions_base(),
        "FEED_EXPORT_ENCODING": "utf-8",
        **cache_settings(settings),
    }


def _extensions_base() -> dict[str, int]:
    """Scrapy's built-in extensions without RemoteControl. Switched off, it is still imported, and its
    module imports aiohttp's web server: ~10 MB of every crawl process's memory for nothing. Mapping it to
    None in ``EXTENSIONS`` does not help (Scrapy imports every key there to normalise it); left out of the
    base it is never imported."""
    from scrapy.settings import default_settings

    return {path: order for path, order in default_settings.EXTENSIONS_BASE.items() if path != REMOTE_CONTROL}
