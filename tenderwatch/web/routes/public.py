"""Token-protected public endpoints reached from e-mails: unsubscribe, relevance feedback, feeds.

The signed token is the credential, so these need no login and carry no CSRF field (RFC 8058 one-click
POSTs come from mail providers without cookies). GET never changes anything: link scanners prefetch links.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlmodel import Session, select

from tenderwatch.alerts.tokens import BadTokenError, unsign
from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc
from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert
from tenderwatch.storage.subscriptions import Channel
from tenderwatch.web.alerts_bridge import mask
from tenderwatch.web.deps import get_db
from tenderwatch.web.feeds import profile_from_token, render_calendar, render_feed
from tenderwatch.web.render import render

router = APIRouter()

VERDICTS = {"relevant": True, "not-relevant": False}


def _message(request: Request, title: str, text: str, status_code: int = 200) -> Response:
    return render(request, "message.html", status_code=status_code, title=title, text=text)


def _channel(session: Session, token: str) -> Channel | None:
    try:
        data: dict[str, Any] = unsign("unsubscribe", token)
    except BadTokenError:
        return None
    channel_id = data.get("channel")
    return session.get(Channel, channel_id) if isinstance(channel_id, int) else None


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(request: Request, token: str, session: Session = Depends(get_db)) -> Response:
    channel = _channel(session, token)
    if channel is None:
        return _message(request, "Link not valid", "This unsubscribe link is not valid.", 404)
    return render(request, "unsubscribe.html", channel=channel, target=mask(channel.target), token=token)


@router.post("/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe(request: Request, token: str, session: Session = Depends(get_db)) -> Response:
    """RFC 8058: a POST with ``List-Unsubscribe=One-Click`` answers 200 with no further interaction."""
    channel = _channel(session, token)
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    if channel is None:
        if one_click:
            return PlainTextResponse("this unsubscribe link is not valid", status_code=404)
        return _message(request, "Link not valid", "This unsubscribe link is not valid.", 404)
    if channel.active or channel.unsubscribed_at is None:
        channel.active = False
        channel.unsubscribed_at = now_utc()
        session.add(channel)
    if one_click:
        return PlainTextResponse("unsubscribed")
    return _message(
        request, "Unsubscribed", f"{mask(channel.target)} will receive no more alerts from tenderwatch."
    )


def _alert(session: Session, token: str) -> Alert | None:
    max_age = get_settings().feedback_link_max_age_days * 86400
    try:
        data: dict[str, Any] = unsign("feedback", token, max_age=max_age)
    except BadTokenError:
        return None
    alert_id = data.get("alert")
    return session.get(Alert, alert_id) if isinstance(alert_id, int) else None


def _verdict(verdict: str) -> bool:
    if verdict not in VERDICTS:
        raise HTTPException(status_code=404, detail="not found")
    return VERDICTS[verdict]


@router.get("/feedback/{token}/{verdict}", response_class=HTMLResponse, include_in_schema=False)
def feedback_page(request: Request, token: str, verdict: str, session: Session = Depends(get_db)) -> Response:
    relevant = _verdict(verdict)
    alert = _alert(session, token)
    if alert is None:
        return _message(request, "Link not valid", "This feedback link is not valid or has expired.", 404)
    tender = session.get(Tender, alert.tender_id)
    return render(request, "feedback.html", tender=tender, relevant=relevant, token=token, verdict=verdict)


@router.post("/feedback/{token}/{verdict}", response_class=HTMLResponse, include_in_schema=False)
def feedback(request: Request, token: str, verdict: str, session: Session = Depends(get_db)) -> Response:
    relevant = _verdict(verdict)
    alert = _alert(session, token)
    if alert is None or alert.id is None:
        return _message(request, "Link not valid", "This feedback link is not valid or has expired.", 404)
    row = session.exec(select(Feedback).where(Feedback.alert_id == alert.id)).first()
    if row is None:
        row = Feedback(
            alert_id=alert.id, tender_id=alert.tender_id, profile_id=alert.profile_id, relevant=relevant
        )
    row.relevant = relevant
    row.at = now_utc()
    session.add(row)
    word = "relevant" if relevant else "not relevant"
    return _message(request, "Thank you", f"Your cluster manager will see that this call was {word}.")


def _feed_profile(session: Session, token: str) -> Any:
    profile = profile_from_token(session, token)
    if profile is None:
        raise HTTPException(status_code=404, detail="this feed link is not valid")
    return profile


@router.get("/profiles/feed/{token}.rss", include_in_schema=False)
def feed_rss(request: Request, token: str, session: Session = Depends(get_db)) -> Response:
    body = render_feed(session, _feed_profile(session, token), atom=False, self_url=str(request.url))
    return Response(body, media_type="application/rss+xml; charset=utf-8")


@router.get("/profiles/feed/{token}.atom", include_in_schema=False)
def feed_atom(request: Request, token: str, session: Session = Depends(get_db)) -> Response:
    body = render_feed(session, _feed_profile(session, token), atom=True, self_url=str(request.url))
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/profiles/feed/{token}.ics", include_in_schema=False)
def feed_ics(token: str, session: Session = Depends(get_db)) -> Response:
    body = render_calendar(session, _feed_profile(session, token))
    return Response(body, media_type="text/calendar; charset=utf-8")
