"""Crawl-run recorder: closes each run's row with its figures, status and the drift alarm verdict.

Rules, in order: an explicit failure (unreachable portal, bad JSON, callback exception) → failed with that
reason; an interrupted crawl → failed; a listing that answered but yielded nothing, or whose required-field
validity fell below ``TENDERWATCH_DRIFT_MIN_VALIDITY`` → failed with "layout changed?" and the figures;
a recorded warning (``WARNING_STAT``) → partial with that message as error; dropped items → partial; else
success. A failed run never deletes or blanks stored tenders: storage only ever upserts what was yielded.
"""

from __future__ import annotations

from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from twisted.python.failure import Failure

from tenderwatch.config import get_settings
from tenderwatch.items import REQUIRED_FOR_VALIDITY
from tenderwatch.pipelines import RUN_ID_STAT
from tenderwatch.spiders.base import ERROR_STAT, FAILED_PREFIX, WARNING_STAT
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.models import RunStatus
from tenderwatch.storage.runs import finish_run

#: close reasons of a complete crawl (the canary's sample limits end a crawl early on purpose)
COMPLETE_REASONS = ("finished", "closespider_itemcount", "closespider_pagecount")
VALIDITY_FIELDS = ("reference", "title", "deadline_or_planned", "url", "published_at")


def validity_figures(stats: StatsCollector) -> dict[str, float]:
    seen = stats.get_value("tenderwatch/items_seen", 0)
    if not seen:
        return {}
    return {
        name: round(stats.get_value(f"tenderwatch/valid/{name}", 0) / seen, 4) for name in VALIDITY_FIELDS
    }


def judge(
    reason: str,
    stats: StatsCollector,
    *,
    allow_empty: bool,
    min_validity: float,
    required: tuple[str, ...] = REQUIRED_FOR_VALIDITY,
) -> tuple[RunStatus, str | None]:
    """Status and error message of a finished crawl (pure, unit-tested).

    A partial run's message is the spider's warning (``WARNING_STAT``), if it recorded one."""
    if reason.startswith(FAILED_PREFIX) or stats.get_value(ERROR_STAT):
        return RunStatus.FAILED, stats.get_value(ERROR_STAT) or reason.removeprefix(FAILED_PREFIX)
    if reason not in COMPLETE_REASONS:
        return RunStatus.FAILED, f"crawl interrupted ({reason})"
    seen = stats.get_value("tenderwatch/items_seen", 0)
    # a portal that says in words "no open calls" (listing spiders set this stat) is a legitimate empty run
    empty_ok = allow_empty or bool(stats.get_value("tenderwatch/empty_listing_confirmed"))
    if seen == 0 and not empty_ok:
        return RunStatus.FAILED, "layout changed? the portal answered but no call was found"
    figures = validity_figures(stats)
    low = {name: figures[name] for name in required if figures.get(name, 1.0) < min_validity}
    if low:
        shown = ", ".join(f"{name} {value:.0%}" for name, value in low.items())
        every = ", ".join(f"{name} {value:.0%}" for name, value in figures.items())
        return (
            RunStatus.FAILED,
            f"layout changed? field validity below {min_validity:.0%}: {shown} "
            f"(all fields over {seen} items: {every})",
        )
    if stats.get_value(WARNING_STAT):
        return RunStatus.PARTIAL, stats.get_value(WARNING_STAT)
    if stats.get_value("tenderwatch/items_dropped", 0):
        return RunStatus.PARTIAL, None
    return RunStatus.SUCCESS, None


class CrawlRunRecorder:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.spider_error, signal=signals.spider_error)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRunRecorder:
        return cls(crawler)

    def spider_error(self, failure: Failure, response: Any, spider: Spider) -> None:
        """An exception in a callback means the page could not be read: the run fails, saying where."""
        stats = self.crawler.stats
        assert stats is not None
        if stats.get_value(ERROR_STAT) is None:
            where = getattr(response, "url", "?")
            stats.set_value(
                ERROR_STAT, f"cannot parse {where}: {type(failure.value).__name__}: {failure.value}"
            )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        run_id = stats.get_value(RUN_ID_STAT)
        if run_id is None:
            return
        status, error = judge(
            reason,
            stats,
            allow_empty=getattr(spider, "allow_empty", False),
            min_validity=get_settings().drift_min_validity,
            required=getattr(spider, "required_fields", REQUIRED_FOR_VALIDITY),
        )
        drops = {
            key.removeprefix("tenderwatch/dropped/"): value
            for key, value in stats.get_stats().items()
            if key.startswith("tenderwatch/dropped/")
        }
        with session_scope() as session:
            finish_run(
                session,
                run_id,
                status=status,
                error=error,
                requests=stats.get_value("downloader/request_count", 0),
                items_seen=stats.get_value("tenderwatch/items_seen", 0),
                items_new=stats.get_value("tenderwatch/items_new", 0),
                items_changed=stats.get_value("tenderwatch/items_changed", 0),
                items_unchanged=stats.get_value("tenderwatch/items_unchanged", 0),
                items_dropped=stats.get_value("tenderwatch/items_dropped", 0),
                drop_reasons=drops,
                field_validity=validity_figures(stats),
                stats=_plain_stats(stats.get_stats()),
            )


def _plain_stats(values: dict[str, Any]) -> dict[str, Any]:
    """Scrapy stats as JSON-safe values (datetimes become ISO strings)."""
    return {
        key: (value.isoformat() if hasattr(value, "isoformat") else value)
        for key, value in values.items()
        if isinstance(value, (int, float, str)) or hasattr(value, "isoformat")
    }
