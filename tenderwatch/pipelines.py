"""Item pipelines: validate → classify → store (batched upsert with change log).

Order matters and is set in :mod:`tenderwatch.scrapy_settings`. Every drop is counted under
``tenderwatch/dropped/<reason>`` so the run record says why an item was lost.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import ValidationError
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from tenderwatch.items import TenderItem, field_validity
from tenderwatch.relevance import classification_columns
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.runs import start_run
from tenderwatch.storage.tenders import UpsertResult, upsert_batch

RUN_ID_STAT = "tenderwatch/run_id"


def drop_reason(error: ValidationError) -> str:
    """A short, stable reason such as ``title: missing`` (used as a stats key and shown to operators)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "item"
    kind = first["type"]
    if kind == "missing" or first.get("input", "") is None:
        text = "missing"
    elif kind == "string_too_short":
        text = "empty"
    else:
        text = first["msg"]
    return f"{where}: {text}"


class ValidatePipeline:
    """Turn a spider's dict into a :class:`TenderItem`; count field validity; drop duplicates in one run."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats
        self.seen: set[tuple[str, str]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> TenderItem:
        data = item.model_dump() if isinstance(item, TenderItem) else dict(item)
        self.stats.inc_value("tenderwatch/items_seen")
        for name, ok in field_validity(data).items():
            self.stats.inc_value(f"tenderwatch/valid/{name}", 1 if ok else 0)
        try:
            tender = TenderItem.model_validate(data)
        except ValidationError as error:
            self._drop(drop_reason(error))
        key = (tender.source, tender.source_id)
        if key in self.seen:
            self._drop("duplicate within run")
        self.seen.add(key)
        return tender

    def _drop(self, reason: str) -> Any:
        self.stats.inc_value("tenderwatch/items_dropped")
        self.stats.inc_value(f"tenderwatch/dropped/{reason}")
        raise DropItem(reason)


class ClassifyPipeline:
    """Attach relevance scores, categories and reasons (derived data, stored with the tender)."""

    def process_item(self, item: TenderItem) -> tuple[TenderItem, dict[str, Any]]:
        return item, classification_columns(item)


class StorePipeline:
    """Batch upserts: one transaction per ``TENDERWATCH_UPSERT_BATCH_SIZE`` items, never one per item."""

    def __init__(self, crawler: Crawler, batch_size: int) -> None:
        self.crawler = crawler
        self.batch_size = batch_size
        self.buffer: list[tuple[TenderItem, dict[str, Any]]] = []
        self.totals = UpsertResult()
        self.run_id: int | None = None
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        from tenderwatch.config import get_settings

        return cls(crawler, get_settings().upsert_batch_size)

    def open_spider(self) -> None:
        assert self.crawler.spider is not None
        with session_scope() as session:
            self.run_id = start_run(session, self.crawler.spider.name).id
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(RUN_ID_STAT, self.run_id)

    def process_item(self, pair: tuple[TenderItem, dict[str, Any]]) -> TenderItem:
        self.buffer.append(pair)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return pair[0]

    def close_spider(self) -> None:
        self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        with session_scope() as session:
            result = upsert_batch(session, batch, crawl_run_id=self.run_id)
        self.totals.add(result)
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("tenderwatch/items_new", self.totals.new)
        stats.set_value("tenderwatch/items_changed", self.totals.changed)
        stats.set_value("tenderwatch/items_unchanged", self.totals.unchanged)
        stats.set_value("tenderwatch/items_merged", self.totals.merged)  # joined another source's call
