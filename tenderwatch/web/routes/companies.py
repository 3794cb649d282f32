"""Companies, their channels and subscription profiles — managers see only their clusters (404 otherwise)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, func
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from tenderwatch.dates import now_utc
from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.models import Tender
from tenderwatch.storage.outbox import Alert, Delivery, DeliveryAttempt
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Frequency, Profile
from tenderwatch.web import alerts_bridge
from tenderwatch.web.deps import (
    Principal,
    check_csrf,
    get_db,
    scope_companies,
    scoped_channel,
    scoped_company,
    scoped_profile,
    subscribers,
    visible_clusters,
)
from tenderwatch.web.feeds import feed_links
from tenderwatch.web.profile_form import ProfileForm, parse_profile_form
from tenderwatch.web.render import render
from tenderwatch.web.routes.tenders import known_sources

router = APIRouter(dependencies=[Depends(check_csrf)])

PREVIEW_LIMIT = 20


def _back(path: str, note: str | None = None) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(path + (f"?note={quote(note)}" if note else ""), status_code=303)


@router.get("/companies", response_class=HTMLResponse, include_in_schema=False)
def companies_page(
    request: Request, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Response:
    query = select(Company, Cluster).join(Cluster, col(Cluster.id) == Company.cluster_id)
    rows = session.exec(scope_companies(query, principal).order_by(col(Cluster.name), col(Company.name)))
    profile_counts = dict(
        session.exec(select(Profile.company_id, func.count()).group_by(col(Profile.company_id))).all()
    )
    return render(
        request,
        "companies.html",
        rows=list(rows),
        profile_counts=profile_counts,
        clusters=visible_clusters(session, principal),
    )


def _company_fields(form: FormData) -> tuple[dict[str, Any], list[str]]:
    errors: list[str] = []
    name = str(form.get("name", "")).strip()
    if not name or len(name) > 255:
        errors.append("the company needs a name (at most 255 characters)")
    timezone = str(form.get("timezone", "Europe/Brussels")).strip() or "Europe/Brussels"
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)
    except (ValueError, KeyError, OSError):
        errors.append(f"unknown time zone {timezone!r}")
    try:
        digest_hour = int(str(form.get("digest_hour", "8")))
        weekly_day = int(str(form.get("weekly_day", "0")))
        if not (0 <= digest_hour <= 23 and 0 <= weekly_day <= 6):
            raise ValueError
    except ValueError:
        errors.append("digest hour is 0–23 and weekly day 0 (Monday)–6")
        digest_hour, weekly_day = 8, 0
    return {"name": name, "timezone": timezone, "digest_hour": digest_hour, "weekly_day": weekly_day}, errors


def _cluster_in_scope(session: Session, principal: Principal, raw: Any) -> Cluster:
    try:
        cluster = session.get(Cluster, int(str(raw)))
    except ValueError:
        cluster = None
    if cluster is None or cluster.id is None or not principal.in_scope(cluster.id):
        raise HTTPException(status_code=404, detail="no such cluster")
    return cluster


def _name_taken(session: Session, cluster_id: int, name: str, company_id: int | None = None) -> bool:
    query = select(Company.id).where(Company.cluster_id == cluster_id, Company.name == name)
    return any(cid != company_id for cid in session.exec(query))


@router.get("/companies/new", response_class=HTMLResponse, include_in_schema=False)
def company_new_form(
    request: Request, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Response:
    return render(
        request, "company_new.html", clusters=visible_clusters(session, principal), errors=[], values={}
    )


@router.post("/companies/new", response_class=HTMLResponse, include_in_schema=False)
async def company_create(
    request: Request, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Response:
    form = await request.form()
    cluster = _cluster_in_scope(session, principal, form.get("cluster_id"))
    assert cluster.id is not None
    fields, errors = _company_fields(form)
    if not errors and _name_taken(session, cluster.id, fields["name"]):
        errors.append(f"{cluster.name} already has a company named {fields['name']!r}")
    if errors:
        return render(
            request,
            "company_new.html",
            status_code=400,
            clusters=visible_clusters(session, principal),
            errors=errors,
            values=dict(form),
        )
    company = Company(cluster_id=cluster.id, **fields)
    session.add(company)
    session.flush()
    return _back(f"/companies/{company.id}", "company created")


@router.get("/companies/{company_id}", response_class=HTMLResponse, include_in_schema=False)
def company_page(
    request: Request,
    note: str | None = None,
    company: Company = Depends(scoped_company),
    session: Session = Depends(get_db),
) -> Response:
    profiles = list(
        session.exec(select(Profile).where(Profile.company_id == company.id).order_by(col(Profile.name)))
    )
    channels = list(
        session.exec(select(Channel).where(Channel.company_id == company.id).order_by(col(Channel.id)))
    )
    feedback = session.exec(
        select(Feedback, Tender, Profile)
        .join(Tender, col(Tender.id) == Feedback.tender_id)
        .join(Profile, col(Profile.id) == Feedback.profile_id)
        .where(Profile.company_id == company.id)
        .order_by(col(Feedback.at).desc())
        .limit(50)
    ).all()
    return render(
        request,
        "company.html",
        company=company,
        cluster=session.get(Cluster, company.cluster_id),
        profiles=profiles,
        channels=channels,
        feedback=feedback,
        feeds={p.id: feed_links(p) for p in profiles},
        note=note,
        errors=[],
    )


@router.post("/companies/{company_id}/edit", include_in_schema=False)
async def company_edit(
    request: Request, company: Company = Depends(scoped_company), session: Session = Depends(get_db)
) -> Response:
    fields, errors = _company_fields(await request.form())
    if not errors and _name_taken(session, company.cluster_id, fields["name"], company.id):
        errors.append(f"another company is already named {fields['name']!r}")
    if errors:
        raise HTTPException(status_code=400, detail="; ".join(errors))
    for key, value in fields.items():
        setattr(company, key, value)
    session.add(company)
    return _back(f"/companies/{company.id}", "saved")


@router.post("/companies/{company_id}/pause", include_in_schema=False)
def company_pause(company: Company = Depends(scoped_company), session: Session = Depends(get_db)) -> Response:
    company.active = not company.active
    session.add(company)
    return _back(f"/companies/{company.id}", "resumed" if company.active else "paused")


def _delete_profiles(session: Session, profile_ids: list[int]) -> None:
    """Profiles with their alert history (deliveries, attempts, feedback)."""
    if not profile_ids:
        return
    alert_ids = select(Alert.id).where(col(Alert.profile_id).in_(profile_ids))
    delivery_ids = select(Delivery.id).where(col(Delivery.alert_id).in_(alert_ids))
    session.exec(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(delivery_ids)))
    session.exec(delete(Delivery).where(col(Delivery.alert_id).in_(alert_ids)))
    session.exec(delete(Feedback).where(col(Feedback.profile_id).in_(profile_ids)))
    session.exec(delete(Alert).where(col(Alert.profile_id).in_(profile_ids)))
    session.exec(delete(Profile).where(col(Profile.id).in_(profile_ids)))


def _delete_channel(session: Session, channel_id: int) -> None:
    delivery_ids = select(Delivery.id).where(Delivery.channel_id == channel_id)
    session.exec(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(delivery_ids)))
    session.exec(delete(Delivery).where(col(Delivery.channel_id) == channel_id))
    session.exec(delete(Channel).where(col(Channel.id) == channel_id))


@router.post("/companies/{company_id}/delete", include_in_schema=False)
def company_delete(
    confirm: str = Form("", max_length=255),
    company: Company = Depends(scoped_company),
    session: Session = Depends(get_db),
) -> Response:
    """Deletes the company with its profiles, channels and alert history, once its name is typed."""
    if confirm.strip() != company.name:
        return _back(f"/companies/{company.id}", "type the company's name to confirm the deletion")
    profile_ids = [p for p in session.exec(select(Profile.id).where(Profile.company_id == company.id)) if p]
    _delete_profiles(session, profile_ids)
    for channel_id in session.exec(select(Channel.id).where(Channel.company_id == company.id)):
        if channel_id is not None:
            _delete_channel(session, channel_id)
    session.delete(company)
    return _back("/companies", f"deleted {company.name}")


# --- channels ----------------------------------------------------------------------------------


@router.post("/companies/{company_id}/channels", include_in_schema=False)
def channel_add(
    target: str = Form(..., max_length=2000),
    company: Company = Depends(scoped_company),
    session: Session = Depends(get_db),
) -> Response:
    try:
        kind, value = alerts_bridge.parse_channel(target)
    except alerts_bridge.ChannelError as exc:
        return _back(f"/companies/{company.id}", f"channel not added: {exc}")
    exists = session.exec(
        select(Channel).where(Channel.company_id == company.id, Channel.target == value)
    ).first()
    if exists is not None:
        return _back(f"/companies/{company.id}", "this channel is already there")
    assert company.id is not None
    session.add(Channel(company_id=company.id, kind=kind, target=value))
    return _back(f"/companies/{company.id}", "channel added")


@router.post("/channels/{channel_id}/delete", include_in_schema=False)
def channel_delete(
    channel: Channel = Depends(scoped_channel), session: Session = Depends(get_db)
) -> Response:
    assert channel.id is not None
    _delete_channel(session, channel.id)
    return _back(f"/companies/{channel.company_id}", "channel removed")


@router.post("/channels/{channel_id}/toggle", include_in_schema=False)
def channel_toggle(
    channel: Channel = Depends(scoped_channel), session: Session = Depends(get_db)
) -> Response:
    channel.active = not channel.active
    if channel.active:
        channel.unsubscribed_at = None
    session.add(channel)
    return _back(f"/companies/{channel.company_id}", "channel on" if channel.active else "channel off")


@router.post("/channels/{channel_id}/test", include_in_schema=False)
def channel_test(channel: Channel = Depends(scoped_channel)) -> Response:
    ok, error = alerts_bridge.send_test(channel)
    note = "test alert sent" if ok else f"test alert failed: {error or 'unknown error'}"
    return _back(f"/companies/{channel.company_id}", note)


# --- profiles ----------------------------------------------------------------------------------


def _profile_page(
    request: Request,
    session: Session,
    company: Company,
    form: ProfileForm,
    *,
    profile: Profile | None,
    preview: list[tuple[Tender, list[str]]] | None = None,
    status_code: int = 200,
    note: str | None = None,
) -> Response:
    return render(
        request,
        "profile.html",
        status_code=status_code,
        company=company,
        profile=profile,
        form=form,
        preview=preview,
        sources=known_sources(session),
        frequencies=[f.value for f in Frequency],
        feeds=feed_links(profile) if profile is not None else None,
        note=note,
    )


@router.get("/companies/{company_id}/profiles/new", response_class=HTMLResponse, include_in_schema=False)
def profile_new_form(
    request: Request, company: Company = Depends(scoped_company), session: Session = Depends(get_db)
) -> Response:
    return _profile_page(request, session, company, ProfileForm.from_profile(None), profile=None)


async def _save_or_preview(
    request: Request, session: Session, company: Company, profile: Profile | None
) -> Response:
    """``action=preview`` shows what the profile would match without saving anything; ``save`` stores it."""
    form_data = await request.form()
    form = parse_profile_form(form_data)
    assert company.id is not None
    taken = session.exec(
        select(Profile.id).where(Profile.company_id == company.id, Profile.name == form.values["name"])
    ).first()
    if taken is not None and (profile is None or taken != profile.id):
        form.errors.append(f"{company.name} already has a profile named {form.values['name']!r}")
    if form.errors:
        return _profile_page(request, session, company, form, profile=profile, status_code=400)
    candidate = Profile(company_id=company.id, **form.values)
    if form_data.get("action") == "preview":
        found = alerts_bridge.preview(session, candidate, PREVIEW_LIMIT)
        return _profile_page(request, session, company, form, profile=profile, preview=found)
    if profile is None:
        profile = candidate
    else:
        for key, value in form.values.items():
            setattr(profile, key, value)
        profile.updated_at = now_utc()
    session.add(profile)
    session.flush()
    return _back(f"/profiles/{profile.id}", "profile saved")


@router.post("/companies/{company_id}/profiles/new", response_class=HTMLResponse, include_in_schema=False)
async def profile_create(
    request: Request, company: Company = Depends(scoped_company), session: Session = Depends(get_db)
) -> Response:
    return await _save_or_preview(request, session, company, None)


@router.get("/profiles/{profile_id}", response_class=HTMLResponse, include_in_schema=False)
def profile_page(
    request: Request,
    note: str | None = None,
    profile: Profile = Depends(scoped_profile),
    session: Session = Depends(get_db),
) -> Response:
    company = session.get(Company, profile.company_id)
    assert company is not None
    found = alerts_bridge.preview(session, profile, PREVIEW_LIMIT)
    form = ProfileForm.from_profile(profile)
    return _profile_page(request, session, company, form, profile=profile, preview=found, note=note)


@router.post("/profiles/{profile_id}", response_class=HTMLResponse, include_in_schema=False)
async def profile_update(
    request: Request, profile: Profile = Depends(scoped_profile), session: Session = Depends(get_db)
) -> Response:
    company = session.get(Company, profile.company_id)
    assert company is not None
    return await _save_or_preview(request, session, company, profile)


@router.post("/profiles/{profile_id}/pause", include_in_schema=False)
def profile_pause(profile: Profile = Depends(scoped_profile), session: Session = Depends(get_db)) -> Response:
    profile.paused = not profile.paused
    profile.updated_at = now_utc()
    session.add(profile)
    return _back(f"/profiles/{profile.id}", "paused" if profile.paused else "resumed")


@router.post("/profiles/{profile_id}/delete", include_in_schema=False)
def profile_delete(
    profile: Profile = Depends(scoped_profile), session: Session = Depends(get_db)
) -> Response:
    assert profile.id is not None
    _delete_profiles(session, [profile.id])
    return _back(f"/companies/{profile.company_id}", f"profile {profile.name} deleted")
