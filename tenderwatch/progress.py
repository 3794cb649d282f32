"""Progress of long crawls on a terminal (one status line per source on stderr, only when it is a tty)."""

from __future__ import annotations

import sys
import time
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class ProgressReporter:
    interval = 2.0

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.last = 0.0
        crawler.signals.connect(self.tick, signal=signals.item_scraped)
        crawler.signals.connect(self.tick, signal=signals.item_dropped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressReporter:
        if not sys.stderr.isatty():
            raise NotConfigured
        return cls(crawler)

    def tick(self, spider: Spider, **_: Any) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        stats = self.crawler.stats
        assert stats is not None
        sys.stderr.write(
            f"\r{spider.name}: {stats.get_value('tenderwatch/items_seen', 0)} items, "
            f"{stats.get_value('downloader/request_count', 0)} requests…\033[K\n"
        )
