"""Run crawls in this process and summarise them from their run records.

Scrapy's reactor cannot restart inside one process, so a process runs one batch of crawls (several
sources concurrently); the scheduler starts a fresh ``tenderwatch crawl`` subprocess for each run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tenderwatch.config import Settings, get_settings
from tenderwatch.storage.db import session_scope, upgrade
from tenderwatch.storage.feeds import Feed, list_feeds, save_validators
from tenderwatch.storage.models import CrawlRun, RunStatus


class UnknownSourceError(ValueError):
    pass


@dataclass
class RunSummary:
    source: str
    status: str
    run_id: int | None = None
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    field_validity: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (RunStatus.SUCCESS.value, RunStatus.PARTIAL.value)

    @classmethod
    def from_run(cls, run: CrawlRun) -> RunSummary:
        return cls(
            source=run.source,
            status=run.status,
            run_id=run.id,
            new=run.items_new,
            changed=run.items_changed,
            unchanged=run.items_unchanged,
            dropped=run.items_dropped,
            drop_reasons=dict(run.drop_reasons),
            field_validity=dict(run.field_validity),
            error=run.error,
        )


def spider_loader(settings: Settings | None = None) -> Any:
    from scrapy.settings import Settings as ScrapySettings
    from scrapy.spiderloader import SpiderLoader

    from tenderwatch.scrapy_settings import scrapy_settings

    return SpiderLoader.from_settings(ScrapySettings(scrapy_settings(settings or get_settings())))


def available_sources() -> list[str]:
    """Every source, sorted: one per spider plus one per configured feed (``feed:<slug>``)."""
    return sorted([*spider_loader().list(), *configured_feeds()])


def enabled_sources(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    chosen = settings.sources or available_sources()
    feeds = configured_feeds()
    off = set(settings.disabled_sources) | {name for name, feed in feeds.items() if not feed.enabled}
    return [name for name in chosen if name not in off]


def configured_feeds() -> dict[str, Feed]:
    """The feeds of the ``feed`` table by source name (none before the database is migrated)."""
    with session_scope() as session:
        return {feed.name: feed for feed in list_feeds(session)}


def check_sources(sources: Iterable[str]) -> list[str]:
    known = set(available_sources())
    names = list(dict.fromkeys(sources))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownSourceError(
            f"unknown source(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return names


def run_crawls(
    sources: Iterable[str], *, extra_settings: dict[str, Any] | None = None, verbose: bool = False
) -> list[RunSummary]:
    """Crawl ``sources`` concurrently in this process; one summary per source, in the given order."""
    from scrapy.crawler import CrawlerProcess

    from tenderwatch.observability import configure_crawl_logging
    from tenderwatch.scrapy_settings import scrapy_settings
    from tenderwatch.spiders.feeds import FeedSpider

    settings = get_settings()
    upgrade(settings.effective_database_url)
    names = check_sources(sources)
    feeds = configured_feeds()
    process_settings = scrapy_settings(settings)
    process_settings.update(extra_settings or {})
    # our handler, not Scrapy's: JSON lines like the service's, and URLs' credentials redacted
    process_settings["LOG_INSTALL_ROOT_HANDLER"] = False
    process = CrawlerProcess(process_settings)
    configure_crawl_logging(settings)
    crawlers = {}
    for name in names:
        # a feed is the one feed spider configured by its row; every other source is its own spider
        crawler = process.create_crawler(FeedSpider if name in feeds else name)
        crawlers[name] = crawler
        process.crawl(crawler, **(feeds[name].spider_args() if name in feeds else {}))
    if not verbose:
        _hide_tracebacks()
    process.start()
    summaries = [_summary(name, crawler) for name, crawler in crawlers.items()]
    for summary in summaries:
        if summary.source in feeds and summary.ok:
            _save_feed_validators(summary.source, crawlers[summary.source])
    _match_events()
    return summaries


def _save_feed_validators(name: str, crawler: Any) -> None:
    """After a run that did not fail, the next fetch of the feed is conditional on what it answered."""
    from tenderwatch.spiders.feeds import validators_from_stats

    validators = validators_from_stats(crawler.stats.get_stats() if crawler.stats else {})
    if validators:
        with session_scope() as session:
            save_validators(session, name, validators)


def _match_events() -> None:
    """Alerts issue hook: turn this crawl's tender events into outbox alerts (a failure never fails the crawl;
    the events stay unmatched and the next run or ``tenderwatch alerts match`` picks them up)."""
    from tenderwatch.alerts.matching import match_new_events

    try:
        with session_scope() as session:
            match_new_events(session)
    except Exception:
        logging.getLogger(__name__).exception("matching tender events into alerts failed")


def _summary(name: str, crawler: Any) -> RunSummary:
    from tenderwatch.pipelines import RUN_ID_STAT

    run_id = crawler.stats.get_value(RUN_ID_STAT) if crawler.stats else None
    if run_id is None:
        return RunSummary(source=name, status=RunStatus.FAILED.value, error="the crawl did not start")
    with session_scope() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        return RunSummary.from_run(run)


class _NoTraceback(logging.Filter):
    """Operators read one-line reasons; tracebacks are for ``--verbose``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _hide_tracebacks() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NoTraceback())
