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
    """Every implemented source (one per spider), sorted."""
    return sorted(spider_loader().list())


def enabled_sources(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    chosen = settings.sources or available_sources()
    return [name for name in chosen if name not in settings.disabled_sources]


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

    from tenderwatch.scrapy_settings import scrapy_settings

    names = check_sources(sources)
    settings = get_settings()
    upgrade(settings.effective_database_url)
    process_settings = scrapy_settings(settings)
    process_settings.update(extra_settings or {})
    process = CrawlerProcess(process_settings)
    crawlers = {}
    for name in names:
        crawler = process.create_crawler(name)
        crawlers[name] = crawler
        process.crawl(crawler)
    if not verbose:
        _hide_tracebacks()
    process.start()
    return [_summary(name, crawler) for name, crawler in crawlers.items()]


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
