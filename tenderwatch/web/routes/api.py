"""The read-only JSON API for integrations: Bearer API tokens (or a browser session), 401 otherwise."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlmodel import Session

from tenderwatch.export import tender_record
from tenderwatch.storage.models import Tender
from tenderwatch.web.deps import Principal, anyone, get_db
from tenderwatch.web.queries import TenderFilter, search, tender_filter

router = APIRouter(prefix="/api", tags=["tenders"])


class TenderPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[dict[str, Any]]


@router.get("/tenders", response_model=TenderPage, summary="Search tenders")
def api_tenders(
    flt: TenderFilter = Depends(tender_filter),
    _: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> TenderPage:
    """Tenders matching the filters (same filters as the Tenders page), one page at a time."""
    rows, total = search(session, flt)
    return TenderPage(total=total, page=flt.page, per_page=flt.per_page, items=[_record(t) for t in rows])


@router.get("/tenders/{tender_id}", summary="One tender")
def api_tender(
    tender_id: int, _: Principal = Depends(anyone), session: Session = Depends(get_db)
) -> dict[str, Any]:
    tender = session.get(Tender, tender_id)
    if tender is None:
        raise HTTPException(status_code=404, detail="no such tender")
    return _record(tender)


def _record(tender: Tender) -> dict[str, Any]:
    record = tender_record(tender)
    record["description"] = tender.description
    record["why"] = tender.why
    record["canonical_id"] = tender.canonical_id
    return record
