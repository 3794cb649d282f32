"""Log in and out (session cookie); the login form is CSRF-protected like every other form."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from tenderwatch.web.accounts import authenticate
from tenderwatch.web.deps import Principal, anyone, check_csrf, get_db
from tenderwatch.web.render import render

router = APIRouter(dependencies=[Depends(check_csrf)])


def _safe_next(target: str | None) -> str:
    """Only local paths: no open redirect through ``?next=``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/tenders"


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/tenders", status_code=303)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str = "/tenders") -> Response:
    return render(request, "login.html", next=_safe_next(next), error=None, email="")


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login(
    request: Request,
    email: str = Form(..., max_length=255),
    password: str = Form(..., max_length=1024),
    next: str = Form("/tenders"),
    session: Session = Depends(get_db),
) -> Response:
    result = authenticate(session, email, password)
    if result.user is None:
        return render(
            request, "login.html", status_code=401, next=_safe_next(next), error=result.error, email=email
        )
    request.session.clear()  # no session fixation: a fresh session and CSRF token after login
    request.session.update(uid=result.user.id, sv=result.user.session_version, csrf=secrets.token_urlsafe(32))
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False)
def logout(request: Request, _: Principal = Depends(anyone)) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
