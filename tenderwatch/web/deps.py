"""Authentication, authorization and CSRF as FastAPI dependencies, plus query scoping by cluster.

Every route declares who may call it with :func:`require`; objects that belong to a cluster are loaded
through the ``scoped_*`` dependencies, which answer 404 (not 403) outside the caller's clusters so that
URL guessing reveals nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tenderwatch.storage.accounts import Role, User
from tenderwatch.storage.db import session_scope
from tenderwatch.storage.outbox import Alert, Delivery
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile
from tenderwatch.web.accounts import cluster_ids_of, user_for_api_token

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """No valid session or token: pages redirect to /login, the API answers 401."""


@dataclass(frozen=True)
class Principal:
    """The caller: plain values (usable after the request's session closed, e.g. on error pages)."""

    user_id: int
    email: str
    role: Role
    clusters: frozenset[int]

    @property
    def sees_all_clusters(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def sees_subscribers(self) -> bool:
        return self.role in (Role.ADMIN, Role.MANAGER)

    @property
    def sees_operations(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPERATOR)

    def in_scope(self, cluster_id: int) -> bool:
        return self.sees_all_clusters or (self.role == Role.MANAGER and cluster_id in self.clusters)


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; commits when the route returns, rolls back on error."""
    engine: Engine = request.app.state.engine
    with session_scope(engine) as session:
        yield session


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _session_user(request: Request, session: Session) -> User | None:
    data = request.session
    uid, version = data.get("uid"), data.get("sv")
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None or not user.active or user.session_version != version:
        request.session.pop("uid", None)
        return None
    return user


def current_principal(request: Request, session: Session = Depends(get_db)) -> Principal:
    """The logged-in caller (session cookie, or a Bearer API token on /api only: tokens are read-only)."""
    token = _bearer(request) if request.url.path.startswith("/api/") else None
    user = user_for_api_token(session, token) if token else _session_user(request, session)
    if user is None:
        raise LoginRequired()
    assert user.id is not None
    principal = Principal(
        user_id=user.id, email=user.email, role=Role(user.role), clusters=cluster_ids_of(session, user)
    )
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only these roles (403 for the others, login for nobody)."""
    allowed = frozenset(roles)

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status_code=403, detail="your role does not give access to this page")
        return principal

    return dependency


anyone = require(Role.ADMIN, Role.MANAGER, Role.OPERATOR)
subscribers = require(Role.ADMIN, Role.MANAGER)
operations = require(Role.ADMIN, Role.OPERATOR)
admins = require(Role.ADMIN)


# --- CSRF (session-bound synchronizer token) -------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use; every form renders it as a hidden field."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Unsafe methods must echo the session's token in the ``csrf_token`` form field."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    form = await request.form()
    given = form.get("csrf_token")
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not secrets.compare_digest(expected, given)
    ):
        raise HTTPException(
            status_code=403, detail="the form expired or was not sent by this site; reload it"
        )


# --- cluster scoping ---------------------------------------------------------------------------


def scope_companies(query: Any, principal: Principal) -> Any:
    """Restrict a query that already involves ``Company`` to the caller's clusters."""
    if principal.sees_all_clusters:
        return query
    if principal.role != Role.MANAGER:
        return query.where(col(Company.id).is_(None))
    return query.where(col(Company.cluster_id).in_(list(principal.clusters)))


def visible_clusters(session: Session, principal: Principal) -> list[Cluster]:
    query = select(Cluster).order_by(col(Cluster.name))
    if not principal.sees_all_clusters:
        query = query.where(col(Cluster.id).in_(list(principal.clusters)))
    return list(session.exec(query))


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what}")


def _company_in_scope(session: Session, principal: Principal, company_id: int) -> Company:
    company = session.get(Company, company_id)
    if company is None or not principal.in_scope(company.cluster_id):
        raise _not_found("company")
    return company


def scoped_company(
    company_id: int, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Company:
    return _company_in_scope(session, principal, company_id)


def scoped_profile(
    profile_id: int, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Profile:
    profile = session.get(Profile, profile_id)
    if profile is None:
        raise _not_found("profile")
    try:
        _company_in_scope(session, principal, profile.company_id)
    except HTTPException:
        raise _not_found("profile") from None
    return profile


def scoped_channel(
    channel_id: int, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise _not_found("channel")
    try:
        _company_in_scope(session, principal, channel.company_id)
    except HTTPException:
        raise _not_found("channel") from None
    return channel


def scoped_delivery(
    delivery_id: int, principal: Principal = Depends(subscribers), session: Session = Depends(get_db)
) -> Delivery:
    row = session.exec(
        select(Delivery, Company)
        .join(Alert, col(Alert.id) == Delivery.alert_id)
        .join(Profile, col(Profile.id) == Alert.profile_id)
        .join(Company, col(Company.id) == Profile.company_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if row is None or not principal.in_scope(row[1].cluster_id):
        raise _not_found("delivery")
    return row[0]


def template_context(request: Request) -> dict[str, Any]:
    """What every template may use: the caller (if any) and the CSRF token."""
    return {"principal": getattr(request.state, "principal", None), "csrf": csrf_token(request)}
