"""The alert outbox and history: status, attempts, last error; retry a dead delivery; feedback."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert, Delivery, DeliveryStatus
from tenderwatch.storage.subscriptions import Channel, Company, Profile
from tenderwatch.web import alerts_bridge
from tenderwatch.web.deps import Principal, check_csrf, get_db, scope_companies, scoped_delivery, subscribers
from tenderwatch.web.render import render

router = APIRouter(dependencies=[Depends(check_csrf)])

LIMIT = 200


@router.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
def alerts_page(
    request: Request,
    status: str = "",
    note: str | None = None,
    principal: Principal = Depends(subscribers),
    session: Session = Depends(get_db),
) -> Response:
    query = (
        sa_select(Delivery, Alert, Profile, Company, Tender, Channel)  # sqlmodel's select stops at 4
        .join(Alert, col(Alert.id) == Delivery.alert_id)
        .join(Profile, col(Profile.id) == Alert.profile_id)
        .join(Company, col(Company.id) == Profile.company_id)
        .join(Tender, col(Tender.id) == Alert.tender_id)
        .join(Channel, col(Channel.id) == Delivery.channel_id)
    )
    if status:
        query = query.where(col(Delivery.status) == status)
    query = scope_companies(query, principal).order_by(col(Delivery.id).desc()).limit(LIMIT)
    rows = session.execute(query).all()
    feedback_query = (
        select(Feedback, Tender, Profile, Company)
        .join(Tender, col(Tender.id) == Feedback.tender_id)
        .join(Profile, col(Profile.id) == Feedback.profile_id)
        .join(Company, col(Company.id) == Profile.company_id)
    )
    feedback = session.exec(
        scope_companies(feedback_query, principal).order_by(col(Feedback.at).desc()).limit(LIMIT)
    ).all()
    return render(
        request,
        "alerts.html",
        rows=rows,
        feedback=feedback,
        status=status,
        statuses=[s.value for s in DeliveryStatus],
        note=note,
    )


@router.post("/deliveries/{delivery_id}/retry", include_in_schema=False)
def delivery_retry(
    delivery: Delivery = Depends(scoped_delivery), session: Session = Depends(get_db)
) -> Response:
    assert delivery.id is not None
    if delivery.status not in (DeliveryStatus.DEAD.value, DeliveryStatus.FAILED.value):
        return RedirectResponse("/alerts?note=only+failed+or+dead+deliveries+can+be+retried", status_code=303)
    alerts_bridge.retry_delivery(session, delivery.id)
    return RedirectResponse(f"/alerts?note=delivery+{delivery.id}+queued+again", status_code=303)
