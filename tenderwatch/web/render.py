"""Jinja2 rendering with autoescaping everywhere and a few display filters."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tenderwatch.export import deadline_text
from tenderwatch.web.alerts_bridge import mask
from tenderwatch.web.deps import template_context

TEMPLATES_DIR = Path(__file__).with_name("templates")
#: known classifier categories (the relevance issue defines them); others found in data are added
CATEGORIES = ("laser_photonics", "engineering")
STATUSES = ("planned", "active", "closed", "cancelled", "awarded")


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _deadline(tender: Any) -> str:
    return deadline_text(tender) or "—"


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
    env.filters.update(when=_when, deadline=_deadline, mask=mask, short=_short)
    env.globals.update(CATEGORIES=CATEGORIES, STATUSES=STATUSES)
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {**template_context(request), **context}, status_code=status_code
    )
