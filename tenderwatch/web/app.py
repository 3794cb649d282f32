"""The web admin application: ``create_app(settings)``, served by ``tenderwatch web`` and ``run``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenderwatch.config import Settings, get_settings
from tenderwatch.storage.db import get_engine
from tenderwatch.web.deps import LoginRequired
from tenderwatch.web.render import render
from tenderwatch.web.routes import account, alerts, api, auth, companies, operations, public, tenders

STATIC_DIR = Path(__file__).with_name("static")
SESSION_COOKIE = "tw_session"

SECURITY_HEADERS = {
    # no inline scripts or styles anywhere: the pages need none
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # token links (unsubscribe, feeds) must not leak through the Referer header
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": "authentication required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_json(request) or request.method not in ("GET", "POST"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        titles = {403: "Not allowed", 404: "Not found", 400: "Bad request"}
        return render(
            request,
            "message.html",
            status_code=exc.status_code,
            title=titles.get(exc.status_code, "Error"),
            text=str(exc.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:])}: {err.get('msg')}" for err in exc.errors()
        )
        if _wants_json(request):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        return render(request, "message.html", status_code=422, title="Bad request", text=problems)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web admin on the configured database (migrated beforehand: ``tenderwatch db upgrade``)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="tenderwatch",
        summary="Big Science calls for tender: read API for integrations (Bearer API tokens).",
        version="0.1.0",
        docs_url=None,  # the Swagger UI needs inline scripts; the schema itself is served
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.engine = get_engine(settings.effective_database_url)
    app.state.settings = settings
    https = settings.public_url.startswith("https://")
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=settings.web_session_max_age_seconds,
        same_site="lax",
        https_only=https,
    )
    app.add_middleware(SecurityHeaders, hsts=https)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (auth, tenders, companies, alerts, operations, account, public, api):
        app.include_router(module.router)
    _install_handlers(app)
    _include_observability(app)
    return app


def _include_observability(app: FastAPI) -> None:
    """Public /metrics and /healthz of the service issue (``observability.router(engine_factory)``)."""
    try:
        from tenderwatch import observability  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return
    make_router = getattr(observability, "router", None)
    if callable(make_router):
        app.include_router(make_router(lambda: app.state.engine))
