"""The caller's own API tokens, and user and cluster administration (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.accounts import ApiToken, User, UserCluster
from tenderwatch.storage.subscriptions import Cluster
from tenderwatch.web.accounts import AccountError, create_user, issue_api_token
from tenderwatch.web.deps import Principal, admins, anyone, check_csrf, get_db
from tenderwatch.web.render import render

router = APIRouter(dependencies=[Depends(check_csrf)])


def _tokens(session: Session, principal: Principal) -> list[ApiToken]:
    return list(
        session.exec(
            select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(col(ApiToken.id).desc())
        )
    )


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account_page(
    request: Request, principal: Principal = Depends(anyone), session: Session = Depends(get_db)
) -> Response:
    return render(request, "account.html", tokens=_tokens(session, principal), new_token=None)


@router.post("/account/tokens", response_class=HTMLResponse, include_in_schema=False)
def token_create(
    request: Request,
    name: str = Form("token", max_length=128),
    principal: Principal = Depends(anyone),
    session: Session = Depends(get_db),
) -> Response:
    token = issue_api_token(session, principal.user_id, name)
    return render(request, "account.html", tokens=_tokens(session, principal), new_token=token)


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False)
def token_revoke(
    token_id: int, principal: Principal = Depends(anyone), session: Session = Depends(get_db)
) -> Response:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != principal.user_id:
        raise HTTPException(status_code=404, detail="no such token")
    token.revoked_at = token.revoked_at or now_utc()
    session.add(token)
    return RedirectResponse("/account", status_code=303)


def _users_page(
    request: Request, session: Session, *, error: str | None = None, status: int = 200
) -> Response:
    users = list(session.exec(select(User).order_by(col(User.email))))
    links = session.exec(
        select(UserCluster, Cluster).join(Cluster, col(Cluster.id) == UserCluster.cluster_id)
    )
    clusters_of: dict[int, list[str]] = {}
    for link, cluster in links:
        clusters_of.setdefault(link.user_id, []).append(cluster.name)
    clusters = list(session.exec(select(Cluster).order_by(col(Cluster.name))))
    return render(
        request,
        "users.html",
        status_code=status,
        users=users,
        clusters_of=clusters_of,
        clusters=clusters,
        error=error,
    )


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
def users_page(
    request: Request, _: Principal = Depends(admins), session: Session = Depends(get_db)
) -> Response:
    return _users_page(request, session)


@router.post("/admin/users", response_class=HTMLResponse, include_in_schema=False)
def user_create(
    request: Request,
    email: str = Form(..., max_length=255),
    password: str = Form(..., max_length=1024),
    role: str = Form(...),
    clusters: list[str] = Form([]),
    _: Principal = Depends(admins),
    session: Session = Depends(get_db),
) -> Response:
    try:
        create_user(session, email, password, role, clusters)
    except AccountError as exc:
        return _users_page(request, session, error=str(exc), status=400)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/unlock", include_in_schema=False)
def user_unlock(user_id: int, _: Principal = Depends(admins), session: Session = Depends(get_db)) -> Response:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="no such user")
    user.locked_until = None
    user.failed_logins = 0
    session.add(user)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/clusters", response_class=HTMLResponse, include_in_schema=False)
def cluster_create(
    request: Request,
    name: str = Form(..., max_length=128),
    _: Principal = Depends(admins),
    session: Session = Depends(get_db),
) -> Response:
    name = name.strip()
    if not name or session.exec(select(Cluster).where(Cluster.name == name)).first():
        return _users_page(request, session, error=f"cluster name {name!r} is empty or taken", status=400)
    session.add(Cluster(name=name))
    return RedirectResponse("/admin/users", status_code=303)
