"""Operations: per-source health, crawl runs with their figures, enable/disable a source, "crawl now"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.models import CrawlRun, SourceState
from tenderwatch.storage.runs import runs_of
from tenderwatch.web.deps import Principal, check_csrf, get_db, operations
from tenderwatch.web.render import render

router = APIRouter(dependencies=[Depends(check_csrf)])

HISTORY = 20  # runs per source in the bar chart


@dataclass
class SourceHealth:
    name: str
    state: SourceState | None
    runs: list[CrawlRun] = field(default_factory=list)  # newest first

    @property
    def enabled(self) -> bool:
        return self.state is None or self.state.enabled

    @property
    def badge(self) -> str:
        """ok | partial | failing | drift | disabled | never | running"""
        if not self.enabled:
            return "disabled"
        if self.state is not None and self.state.incident:
            return self.state.incident
        if not self.runs:
            return "never"
        last = self.runs[0].status
        return {"success": "ok", "failed": "failing"}.get(last, last)

    @property
    def chart(self) -> list[dict[str, Any]]:
        """Bars for the items-over-time chart, oldest first, heights in 0..40 px."""
        runs = list(reversed(self.runs))
        top = max((r.items_seen for r in runs), default=0) or 1
        return [
            {
                "x": i * 12,
                "h": max(1, round(40 * r.items_seen / top)),
                "status": r.status,
                "label": f"{r.started_at:%Y-%m-%d %H:%M}: {r.items_seen} items ({r.status})",
            }
            for i, r in enumerate(runs)
        ]

    @property
    def validity(self) -> dict[str, float]:
        return dict(sorted(self.runs[0].field_validity.items())) if self.runs else {}


def _source_names(session: Session) -> list[str]:
    from tenderwatch.crawl import available_sources

    states = set(session.exec(select(SourceState.source)))
    ran = set(session.exec(select(CrawlRun.source).distinct()))
    return sorted(set(available_sources()) | states | ran)


def _health(session: Session) -> list[SourceHealth]:
    out = []
    for name in _source_names(session):
        runs = list(
            session.exec(
                select(CrawlRun)
                .where(CrawlRun.source == name)
                .order_by(col(CrawlRun.started_at).desc(), col(CrawlRun.id).desc())
                .limit(HISTORY)
            )
        )
        out.append(SourceHealth(name, session.get(SourceState, name), runs))
    return out


@router.get("/operations", response_class=HTMLResponse, include_in_schema=False)
def operations_page(
    request: Request,
    note: str | None = None,
    _: Principal = Depends(operations),
    session: Session = Depends(get_db),
) -> Response:
    return render(request, "operations.html", sources=_health(session), note=note)


@router.get("/operations/runs", response_class=HTMLResponse, include_in_schema=False)
def runs_page(
    request: Request,
    source: str = "",
    _: Principal = Depends(operations),
    session: Session = Depends(get_db),
) -> Response:
    return render(
        request,
        "runs.html",
        runs=runs_of(session, source or None, limit=200),
        source=source,
        sources=_source_names(session),
    )


@router.get("/operations/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def run_page(
    request: Request, run_id: int, _: Principal = Depends(operations), session: Session = Depends(get_db)
) -> Response:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail="no such crawl run")
    return render(request, "run.html", run=run)


def _state(session: Session, source: str) -> SourceState:
    if source not in _source_names(session):
        raise HTTPException(status_code=404, detail="no such source")
    state = session.get(SourceState, source)
    if state is None:
        state = SourceState(source=source)
    return state


@router.post("/operations/sources/{source}/toggle", include_in_schema=False)
def source_toggle(
    source: str, _: Principal = Depends(operations), session: Session = Depends(get_db)
) -> Response:
    state = _state(session, source)
    state.enabled = not state.enabled
    state.updated_at = now_utc()
    session.add(state)
    word = "enabled" if state.enabled else "disabled"
    return RedirectResponse(f"/operations?note={source}+{word}", status_code=303)


@router.post("/operations/sources/{source}/crawl", include_in_schema=False)
def source_crawl_now(
    source: str, _: Principal = Depends(operations), session: Session = Depends(get_db)
) -> Response:
    """Only flags the source: the scheduler picks up ``crawl_requested_at`` on its next tick."""
    state = _state(session, source)
    state.crawl_requested_at = now_utc()
    state.updated_at = now_utc()
    session.add(state)
    return RedirectResponse(f"/operations?note=crawl+of+{source}+requested", status_code=303)
