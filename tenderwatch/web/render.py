"""Jinja2 rendering with autoescaping everywhere and a few display filters."""

from __future__ import annotations

import difflib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from tenderwatch.export import deadline_text
from tenderwatch.relevance import CATEGORIES as RELEVANCE_CATEGORIES
from tenderwatch.web.alerts_bridge import mask
from tenderwatch.web.deps import template_context

TEMPLATES_DIR = Path(__file__).with_name("templates")
CATEGORIES = tuple(RELEVANCE_CATEGORIES)  # the classifier's categories, for filters and profile forms
STATUSES = ("planned", "active", "closed", "cancelled", "awarded")


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _deadline(tender: Any) -> str:
    """A date for date-only deadlines, else minutes in UTC (the exact instant is in the exports)."""
    if tender.deadline_date is not None:
        return f"{tender.deadline_date.isoformat()} (all day)"
    return _when(tender.deadline_at) if tender.deadline_at is not None else (deadline_text(tender) or "—")


def safe_url(value: Any) -> str:
    """Only http(s) links from portal data reach an ``href`` (no ``javascript:`` or ``data:`` URLs)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


def word_diff(old: Any, new: Any) -> Markup:
    """Old → new text as escaped words with ``<del>``/``<ins>`` around what changed."""
    before, after = str(old if old is not None else "").split(), str(new if new is not None else "").split()
    parts: list[str] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(str(escape(" ".join(before[a1:a2]))))
            continue
        if a2 > a1:
            parts.append(f"<del>{escape(' '.join(before[a1:a2]))}</del>")
        if b2 > b1:
            parts.append(f"<ins>{escape(' '.join(after[b1:b2]))}</ins>")
    return Markup(" ".join(parts))


def _short(value: Any, length: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= length else text[: length - 1] + "…"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name: tender titles are untrusted
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when, deadline=_deadline, mask=mask, short=_short, word_diff=word_diff, safe_url=safe_url
    )
    env.globals.update(CATEGORIES=CATEGORIES, STATUSES=STATUSES)
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {**template_context(request), **context}, status_code=status_code
    )
