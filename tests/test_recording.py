"""Replay middleware on a hand-made recording (no reactor): ordered answers, repeat, unrecorded → failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from tenderwatch.recording import (
    REPLAY_SETTING,
    RecordingError,
    ReplayMiddleware,
    extension_for,
    load_recording,
)


class _Spider(Spider):
    name = "eli"


def _write(directory: Path, exchanges: list[tuple[dict, bytes]]) -> None:
    (directory / "bodies").mkdir(parents=True)
    lines = []
    for number, (exchange, body) in enumerate(exchanges, 1):
        name = f"bodies/{number:04d}.bin"
        (directory / name).write_bytes(body)
        lines.append(json.dumps({"request_body": None, "headers": {}, **exchange, "body_file": name}))
    (directory / "exchanges.jsonl").write_text("\n".join(lines) + "\n")
    (directory / "manifest.json").write_text(json.dumps({"source": "eli", "exchanges": len(lines)}))


def _middleware(directory: Path) -> ReplayMiddleware:
    crawler = get_crawler(_Spider, {REPLAY_SETTING: str(directory)})
    crawler.spider = crawler._create_spider()
    return ReplayMiddleware.from_crawler(crawler)


def test_answers_in_recorded_order_and_repeats_the_last(tmp_path: Path) -> None:
    url = "https://eli-laser.eu/procurement/"
    html = {"Content-Type": "text/html"}
    _write(
        tmp_path,
        [
            ({"method": "GET", "url": url, "status": 503, "headers": {"Retry-After": "1"}}, b"busy"),
            ({"method": "GET", "url": url, "status": 200, "headers": html}, b"<html><body>ok</body></html>"),
            (
                {
                    "method": "POST",
                    "url": url,
                    "request_body": '{"q": 1}',
                    "status": 200,
                    "headers": {"Content-Type": "application/json"},
                },
                b'{"items": []}',
            ),
        ],
    )
    replay = _middleware(tmp_path)
    first = replay.process_request(Request(url))
    assert first.status == 503 and first.headers[b"Retry-After"] == b"1"
    second = replay.process_request(Request(url))
    assert isinstance(second, HtmlResponse) and second.text == "<html><body>ok</body></html>"
    assert replay.process_request(Request(url)).status == 200  # the last answer repeats
    posted = replay.process_request(Request(url, method="POST", body=b'{"q": 1}'))
    assert isinstance(posted, TextResponse) and posted.body == b'{"items": []}'


def test_unrecorded_request_fails_the_run(tmp_path: Path) -> None:
    _write(tmp_path, [])
    replay = _middleware(tmp_path)
    with pytest.raises(IgnoreRequest, match="not in the recording: GET https://eli-laser.eu/other"):
        replay.process_request(Request("https://eli-laser.eu/other"))
    stats = replay.crawler.stats
    assert stats is not None
    assert stats.get_value("tenderwatch/error") == "not in the recording: GET https://eli-laser.eu/other"


def test_bad_recordings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not a recording"):
        load_recording(tmp_path)
    _write(tmp_path, [])
    (tmp_path / "exchanges.jsonl").write_text('{"method": "GET"}\n')
    with pytest.raises(RecordingError, match="exchanges.jsonl:1: unreadable exchange"):
        load_recording(tmp_path)


def test_off_unless_configured() -> None:
    with pytest.raises(NotConfigured):
        ReplayMiddleware.from_crawler(get_crawler(_Spider))


def test_body_extensions() -> None:
    assert extension_for("text/html; charset=utf-8") == "html"
    assert extension_for("application/json") == "json"
    assert extension_for("application/pdf") == "bin"
