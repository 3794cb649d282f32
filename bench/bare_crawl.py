"""Baseline crawler: bare Scrapy fetching the given URLs one after the other; parses and stores nothing.

``python -m bench.bare_crawl URLS_FILE`` — one absolute URL a line. It uses tenderwatch's own Scrapy
settings (delay, concurrency, retries, robots.txt) without item pipelines and extensions, and chains the
requests like the ESA spider's pagination (the next page is requested once the previous one arrived), so
the difference to ``tenderwatch crawl`` is the pipeline's work, not the request pattern.
Prints ``{"pages": n, "bytes": b}`` as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from tenderwatch.config import get_settings
from tenderwatch.scrapy_settings import scrapy_settings


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls
        self.pages = 0
        self.bytes = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.urls:
            yield scrapy.Request(self.urls[0], cb_kwargs={"index": 0}, dont_filter=True)

    def parse(self, response: Response, index: int) -> Iterator[scrapy.Request]:
        self.pages += 1
        self.bytes += len(response.body)
        if index + 1 < len(self.urls):
            yield scrapy.Request(self.urls[index + 1], cb_kwargs={"index": index + 1}, dont_filter=True)


def main() -> None:
    urls = [line.strip() for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    settings = scrapy_settings(get_settings())
    settings.update(ITEM_PIPELINES={}, EXTENSIONS={}, SPIDER_MODULES=[])
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, urls=urls)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, BareSpider)
    print(json.dumps({"pages": spider.pages, "bytes": spider.bytes}))


if __name__ == "__main__":
    main()
