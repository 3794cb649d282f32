"""Tenders: search and filters, detail with every source record, classification, history and matches."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import func
from sqlmodel import Session, col, select

from tenderwatch.config import get_settings
from tenderwatch.export import CSV_COLUMNS, csv_row
from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.calls import decisions, notices_of
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert
from tenderwatch.storage.subscriptions import Company, Profile
from tenderwatch.storage.tenders import versions_of
from tenderwatch.web.deps import Principal, anyone, get_db, scope_companies
from tenderwatch.web.ocds import release_package
from tenderwatch.web.queries import Sort, TenderFilter, all_matching, logical_call, search, tender_filter
from tenderwatch.web.render import render

router = APIRouter()


def known_sources(session: Session) -> list[str]:
    from tenderwatch.crawl import available_sources

    stored = set(session.exec(select(Tender.source).distinct()))
    return sorted(stored | set(available_sources()))


@router.get("/tenders", response_class=HTMLResponse, include_in_schema=False)
def tenders_page(
    request: Request,
    flt: TenderFilter = Depends(tender_filter),
    _: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> Response:
    rows, total = search(session, flt)
    pages = max(1, -(-total // flt.per_page))
    return render(
        request,
        "tenders.html",
        rows=rows,
        total=total,
        flt=flt,
        pages=pages,
        sources=known_sources(session),
        sorts=[s.value for s in Sort],
    )


@router.get("/tenders/export.csv", include_in_schema=False)
def tenders_csv(
    flt: TenderFilter = Depends(tender_filter),
    _: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS))
    writer.writeheader()
    writer.writerows(csv_row(t) for t in all_matching(session, flt))
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tenders.csv"'},
    )


@router.get("/tenders/export.ocds.json", include_in_schema=False)
def tenders_ocds(
    request: Request,
    flt: TenderFilter = Depends(tender_filter),
    _: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> JSONResponse:
    package = release_package(
        all_matching(session, flt), prefix=get_settings().ocds_prefix, uri=str(request.url)
    )
    return JSONResponse(package, media_type="application/json")


def _tender_or_404(session: Session, tender_id: int) -> Tender:
    tender = session.get(Tender, tender_id)
    if tender is None:
        raise HTTPException(status_code=404, detail="no such tender")
    return tender


@router.get("/tenders/{tender_id}/ocds.json", include_in_schema=False)
def tender_ocds(
    request: Request,
    tender_id: int,
    _: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> JSONResponse:
    tender = _tender_or_404(session, tender_id)
    package = release_package([tender], prefix=get_settings().ocds_prefix, uri=str(request.url))
    return JSONResponse(package, media_type="application/json")


def _matches(session: Session, principal: Principal, tender_ids: list[int]) -> list[dict[str, Any]]:
    """Alerts raised for this call, only those of profiles the caller may see."""
    if not principal.sees_subscribers:
        return []
    query = (
        select(Alert, Profile, Company)
        .join(Profile, col(Profile.id) == Alert.profile_id)
        .join(Company, col(Company.id) == Profile.company_id)
        .where(col(Alert.tender_id).in_(tender_ids))
        .order_by(col(Alert.created_at).desc())
    )
    rows = session.exec(scope_companies(query, principal)).all()
    alert_ids = [a.id for a, _, _ in rows]
    feedback = {
        f.alert_id: f.relevant
        for f in session.exec(select(Feedback).where(col(Feedback.alert_id).in_(alert_ids)))
    }
    return [{"alert": a, "profile": p, "company": c, "feedback": feedback.get(a.id)} for a, p, c in rows]


@router.get("/tenders/{tender_id}", response_class=HTMLResponse, include_in_schema=False)
def tender_page(
    request: Request,
    tender_id: int,
    principal: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> Response:
    tender = _tender_or_404(session, tender_id)
    records = logical_call(session, tender)
    ids = [t.id for t in records if t.id is not None]
    versions = versions_of(session, tender_id)
    notices = {t.id: notices_of(session, t.id) for t in records if t.id is not None}
    alert_count = session.exec(
        select(func.count()).select_from(Alert).where(col(Alert.tender_id).in_(ids))
    ).one()
    return render(
        request,
        "tender.html",
        tender=tender,
        records=records,
        notices=notices,
        links=decisions(session, ids),
        versions=versions,
        matches=_matches(session, principal, ids),
        alert_count=alert_count,
    )
