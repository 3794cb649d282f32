"""TED (Tenders Electronic Daily): the EU's official journal, through the public Search API v3.

Domain
  https://api.ted.europa.eu (anonymous JSON API; notice pages on https://ted.europa.eu)
Target
  ``POST /v3/notices/search`` with a JSON body (``query``, ``fields``, ``limit``, ``scope``,
  ``paginationMode: ITERATION``, ``iterationNextToken``); answer
  ``{"notices": [...], "totalNoticeCount": N, "iterationNextToken": "...", "timedOut": false}``.
Query
  ``(buyer-name ~ "…" OR …) AND notice-type IN (…) AND publication-date >= today(-N)`` from the settings
  ``ted_buyers``, ``ted_notice_types`` and ``ted_lookback_days``; sorted by publication number so that an
  original notice is stored before its corrigenda.
Verified against
  a real v3 response recorded 2026-09-11 (``../shared/fixtures/ted``; field shapes in
  ``../shared/notes/portals.md`` §3). ``internal-identifier-proc`` (BT-22), ``procedure-identifier``
  (BT-04), ``notice-identifier``, ``change-notice-version-identifier`` (BT-758) and ``change-reason-code``
  (BT-140) are field names seen in several independent clients, not in that recording.
Caveats
  Iteration stops on an empty page or once ``totalNoticeCount`` notices arrived: the API may return a
  token after the last record. ``timedOut: true`` is a partial answer, so the run fails. HTTP 400 names
  the bad field (the run fails with TED's message); HTTP 429 waits ``Retry-After`` (or backs off) and
  retries, a bounded number of times. Tender deadlines are dates with an offset (``2026-09-18+02:00``):
  stored as dates, never with an invented time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import scrapy
from scrapy.http import JsonRequest, Response

from tenderwatch.config import Settings, get_settings
from tenderwatch.dates import Deadline, now_utc, parse_deadline
from tenderwatch.items import Status
from tenderwatch.spiders.base import TenderSpider

SEARCH_PATH = "/v3/notices/search"
NOTICE_URL = "https://ted.europa.eu/en/notice/{number}/html"
MAX_LIMIT = 250  # notices per page
MAX_FIELDS_PER_PAGE = 10_000  # limit × len(fields)
ERROR_PREVIEW = (
    400  # TED's 400 message lists ~1,830 valid field names: keep the head, which names the bad one
)

FIELDS: tuple[str, ...] = (
    "publication-number",
    "publication-date",
    "notice-type",
    "notice-title",
    "buyer-name",
    "buyer-country",
    "description-proc",
    "classification-cpv",
    "deadline-receipt-tender-date-lot",
    "deadline-receipt-request-date-lot",
    "estimated-value-proc",
    "estimated-value-cur-proc",
    "official-language",
    "links",
    "procedure-identifier",
    "internal-identifier-proc",
    "notice-identifier",
    "change-notice-version-identifier",
    "change-reason-code",
)

#: estimated values at or below this are placeholders buyers type into a mandatory field (0.00, 1.00)
PLACEHOLDER_VALUE = 1.0


def page_limit(page_size: int, n_fields: int) -> int:
    """Largest page TED accepts for ``n_fields`` fields: ≤ 250 and limit × fields ≤ 10,000."""
    return max(1, min(page_size, MAX_LIMIT, MAX_FIELDS_PER_PAGE // max(n_fields, 1)))


def _phrase(text: str) -> str:
    """A TED expert-search phrase: the query syntax has no escape, so quotes and backslashes go."""
    return " ".join(text.replace('"', " ").replace("\\", " ").split())


def build_query(buyers: Sequence[str], notice_types: Sequence[str], lookback_days: int) -> str:
    """The expert-search query for the followed buyers (pure; unit-tested)."""
    phrases = [p for p in (_phrase(b) for b in buyers) if p]
    if not phrases:
        raise ValueError("TENDERWATCH_TED_BUYERS is empty: TED would return every notice in Europe")
    parts = ["(" + " OR ".join(f'buyer-name ~ "{p}"' for p in phrases) + ")"]
    types = [t.strip() for t in notice_types if t.strip()]
    if types:
        parts.append(f"notice-type IN ({' '.join(types)})")
    parts.append(f"publication-date >= today(-{max(int(lookback_days), 0)})")
    return " AND ".join(parts) + " SORT BY publication-number ASC"


def search_body(settings: Settings, token: str | None = None) -> dict[str, Any]:
    """The JSON body of one search call (the first call has no iteration token)."""
    body: dict[str, Any] = {
        "query": build_query(settings.ted_buyers, settings.ted_notice_types, settings.ted_lookback_days),
        "fields": list(FIELDS),
        "limit": page_limit(settings.ted_page_size, len(FIELDS)),
        "scope": settings.ted_scope,
        "paginationMode": "ITERATION",
    }
    if token:
        body["iterationNextToken"] = token
    return body


def retry_after_seconds(value: str | None, attempt: int, settings: Settings) -> float:
    """Wait before retrying a 429: ``Retry-After`` (seconds or HTTP date) or exponential backoff, capped."""
    wait: float | None = None
    if value:
        text = value.strip()
        try:
            wait = float(text)
        except ValueError:
            try:
                wait = (parsedate_to_datetime(text) - now_utc()).total_seconds()
            except (TypeError, ValueError):
                wait = None
    if wait is None:
        wait = settings.ted_backoff_seconds * (2**attempt)
    return max(0.0, min(wait, settings.ted_max_wait_seconds))


class TedSpider(TenderSpider):
    name = "ted"
    origin = "https://api.ted.europa.eu"
    timezone = "Europe/Brussels"
    organisation = "Publications Office of the European Union"
    # 429 is handled here (Retry-After); Scrapy's retry middleware keeps the 5xx and timeouts
    custom_settings = {"RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408]}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings_obj = get_settings()
        self.seen: set[str] = set()
        #: notice-identifier (UUID) → publication number, to resolve what a change notice changes
        self.notice_numbers: dict[str, str] = {}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        try:
            body = search_body(self.settings_obj)
        except ValueError as exc:
            self.fail(str(exc))
        yield self.search_request(body, received=0)

    def search_request(self, body: dict[str, Any], *, received: int, attempt: int = 0) -> JsonRequest:
        return JsonRequest(
            self.url(SEARCH_PATH),
            data=body,
            callback=self.parse_page,
            errback=self.on_error,
            dont_filter=True,
            meta={"handle_httpstatus_list": [400, 429]},
            cb_kwargs={"body": body, "received": received, "attempt": attempt},
        )

    async def parse_page(
        self, response: Response, body: dict[str, Any], received: int, attempt: int
    ) -> AsyncIterator[Any]:
        if response.status == 400:
            self.fail(f"TED rejected the search (HTTP 400): {ted_error_message(response)}")
        if response.status == 429:
            yield await self._retry_later(response, body, received, attempt)
            return
        page = self.json_body(response)
        if not isinstance(page, dict) or not isinstance(page.get("notices"), list):
            self.fail(f"unexpected answer from {response.url}: no 'notices' list")
        if page.get("timedOut") is True:
            self.fail(f"TED search timed out after {received} notices: the answer is partial")
        notices: list[Any] = page["notices"]
        for notice in notices:
            if not isinstance(notice, dict):
                self.crawler.stats.inc_value("tenderwatch/dropped/not an object")
                continue
            item = self.to_item(notice)
            if item is not None:
                yield item
        following = self._next_request(page, body, received + len(notices))
        if following is not None:
            yield following

    def _next_request(self, page: dict[str, Any], body: dict[str, Any], received: int) -> JsonRequest | None:
        """Next page, or None on an empty page, once the count is reached, or without a token."""
        total = page.get("totalNoticeCount")
        token = page.get("iterationNextToken")
        if not page["notices"]:
            return None
        if isinstance(total, int) and received >= total:
            return None
        if not token:
            # ITERATION answers always carry a token while records remain; without one we cannot go on
            self.crawler.stats.set_value("tenderwatch/ted/ended_short", f"{received} of {total}")
            self.logger.warning("TED gave no iteration token after %s of %s notices", received, total)
            return None
        return self.search_request({**body, "iterationNextToken": token}, received=received)

    async def _retry_later(
        self, response: Response, body: dict[str, Any], received: int, attempt: int
    ) -> JsonRequest:
        if attempt >= self.settings_obj.ted_max_retries:
            self.fail(f"TED kept answering HTTP 429 (rate limited) after {attempt} retries")
        header = response.headers.get(b"Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None, attempt, self.settings_obj)
        self.crawler.stats.inc_value("tenderwatch/ted/rate_limited")
        self.logger.info("TED rate limit: waiting %.1f s before retry %d", wait, attempt + 1)
        await asyncio.sleep(wait)
        return self.search_request(body, received=received, attempt=attempt + 1)

    # --- mapping ---------------------------------------------------------------------------------

    def to_item(self, notice: dict[str, Any]) -> dict[str, Any] | None:
        """Map one TED notice (real v3 shape, see module docstring) to a tender dict; None = seen already.

        A notice without a publication number is still yielded: validation drops it with a counted reason.
        """
        number = _first(notice.get("publication-number"))
        if number in self.seen:
            self.crawler.stats.inc_value("tenderwatch/ted/repeated_notice")
            return None
        if number:
            self.seen.add(number)
        notice_uuid = _first(notice.get("notice-identifier"))
        if notice_uuid and number:  # a change notice may reuse the UUID: the first (original) number wins
            self.notice_numbers.setdefault(notice_uuid, number)
        notice_type = _first(notice.get("notice-type"))
        languages = [str(code).lower() for code in _as_list(notice.get("official-language"))]
        deadline = self._deadline(notice)
        amends = self._amends(notice) if notice_type == "corr" else None
        value_min, value_max = _values(notice.get("estimated-value-proc"))
        published = self.parse_or_none("published_at", _first(notice.get("publication-date")), parse_deadline)
        return {
            "source": self.name,
            "source_id": number,
            # the buyer's own file number when given (F4E-OMF-…); else the OJ S number a human quotes
            "reference": _first(notice.get("internal-identifier-proc")) or amends or number,
            "title": _text(notice.get("notice-title"), languages),
            "description": _text(notice.get("description-proc"), languages),
            "buyer": _buyer(notice.get("buyer-name"), languages),
            "notice_type": notice_type,
            "status": _status(notice_type, notice.get("change-reason-code")),
            "published_at": published.at if published else None,
            "deadline_at": deadline.at if deadline else None,
            "deadline_date_only": deadline.date_only if deadline else False,
            "value_min": value_min,
            "value_max": value_max,
            "currency": _first(notice.get("estimated-value-cur-proc")) if value_max is not None else None,
            "cpv": [str(code) for code in _as_list(notice.get("classification-cpv"))],
            "countries": [str(code) for code in _as_list(notice.get("buyer-country"))],
            "url": _link(notice.get("links"), number) if number else None,
            "language": languages[0] if languages else None,
            "tags": _tags(notice_type),
            "procedure_id": _first(notice.get("procedure-identifier")),
            "amends": amends,
            "raw": {key: value for key, value in notice.items() if key != "links"},
        }

    def _deadline(self, notice: dict[str, Any]) -> Deadline | None:
        """Earliest lot deadline for tenders, else for requests to participate (restricted procedures)."""
        for field in ("deadline-receipt-tender-date-lot", "deadline-receipt-request-date-lot"):
            parsed = [
                self.parse_or_none("deadline_at", v, parse_deadline) for v in _as_list(notice.get(field))
            ]
            found = [d for d in parsed if d is not None]
            if found:
                return min(found, key=lambda d: d.at)
        return None

    def _amends(self, notice: dict[str, Any]) -> str | None:
        """Publication number of the changed notice, when that notice came in this crawl (BT-758 is
        ``<notice UUID>-<version>``); otherwise storage resolves the call by its procedure identifier."""
        changed = _first(notice.get("change-notice-version-identifier"))
        if not changed:
            return None
        uuid = changed.rsplit("-", 1)[0] if changed.count("-") > 4 else changed
        return self.notice_numbers.get(uuid)


def ted_error_message(response: Response) -> str:
    """TED's own words from an error answer (JSON ``message``/``error`` or text), shortened."""
    text = response.text if hasattr(response, "text") else response.body.decode("utf-8", "replace")
    message = text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "errors", "detail"):
            if data.get(key):
                value = data[key]
                message = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                break
    message = " ".join(message.split()) or "(empty answer)"
    return message if len(message) <= ERROR_PREVIEW else message[:ERROR_PREVIEW] + "…"


# --- field shapes (pure helpers) ------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _first(value: Any) -> str | None:
    """First non-blank scalar of a scalar-or-list field, as text."""
    for item in _as_list(value):
        if item is not None and str(item).strip():
            return str(item).strip()
    return None


def _pick(by_language: dict[str, Any], languages: Iterable[str], prefer_english: bool) -> Any:
    """Value for English or the official language (keys are lower-case), else the first one."""
    keys = {str(key).lower(): key for key in by_language}
    order = ["eng", *languages] if prefer_english else [*languages, "eng"]
    for code in order:
        if code in keys:
            return by_language[keys[code]]
    return next(iter(by_language.values()), None)


def _text(value: Any, languages: list[str]) -> str | None:
    """A multilingual text field: English first (TED translates titles), else the official language."""
    if isinstance(value, dict):
        value = _pick(value, languages, prefer_english=True)
    return _first(value)


def _buyer(value: Any, languages: list[str]) -> str | None:
    """Buyer name(s) as the buyer wrote them (official language); joint buyers joined with "; "."""
    if isinstance(value, dict):
        value = _pick(value, languages, prefer_english=False)
    names = [str(name).strip() for name in _as_list(value) if name and str(name).strip()]
    return "; ".join(dict.fromkeys(names)) or None


def _values(value: Any) -> tuple[float | None, float | None]:
    """Estimated value (scalar or list, numbers or numeric strings) → (min, max); placeholders ignored."""
    amounts: list[float] = []
    for item in _as_list(value):
        try:
            amount = float(str(item).replace(",", "."))
        except ValueError:
            continue
        if amount > PLACEHOLDER_VALUE:
            amounts.append(amount)
    if not amounts:
        return None, None
    return min(amounts), max(amounts)


def _link(links: Any, number: str) -> str:
    """The static English notice page (``htmlDirect``), built from the number when absent."""
    if isinstance(links, dict):
        direct = links.get("htmlDirect")
        if isinstance(direct, dict):
            url = direct.get("ENG") or next(iter(direct.values()), None)
            if url:
                return str(url)
    return NOTICE_URL.format(number=number)


def _status(notice_type: str | None, change_reasons: Any) -> Status:
    """eForms notice type → lifecycle: PIN planned, contract notice active, result awarded."""
    kind = (notice_type or "").lower()
    if kind == "corr" and any("cancel" in str(code).lower() for code in _as_list(change_reasons)):
        return Status.CANCELLED
    if kind.startswith("pin"):
        return Status.PLANNED
    if kind.startswith(("can", "veat")):
        return Status.AWARDED
    return Status.ACTIVE


def _tags(notice_type: str | None) -> list[str]:
    kind = (notice_type or "").lower()
    if kind == "corr":
        return ["corrigendum"]
    if kind.startswith("pin"):
        return ["prior_information"]
    return []
