"""Every route × every role: admin, manager of cluster A, manager of cluster B, operator, anonymous.

Routes are enumerated from ``app.routes``: a new route without an entry in ``cases()`` fails
``test_every_route_has_a_matrix_entry``. Object routes target cluster A's objects, so the manager of
cluster B must get 404 (not 403: URL guessing reveals nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from fastapi.routing import iter_route_contexts

from tenderwatch.web.app import create_app
from tests.web.conftest import ROLES, Seed, WebClient, login

ALL = frozenset({"admin", "manager_a", "manager_b", "operator"})
SUBSCRIBERS = frozenset({"admin", "manager_a", "manager_b"})
OPERATIONS = frozenset({"admin", "operator"})
ADMIN = frozenset({"admin"})


@dataclass
class Case:
    path: str  # concrete path to request
    ok: int  # status when allowed
    allowed: frozenset[str] = ALL
    scoped: bool = False  # the object belongs to cluster A: manager_b gets 404
    public: bool = False
    data: dict[str, object] = field(default_factory=dict)
    order: int = 0  # destructive requests run after the others


def cases(seed: Seed) -> dict[tuple[str, str], Case]:
    unsub, fb, feed = seed.unsubscribe_token(), seed.feedback_token(), seed.feed_token()
    profile_form = {"name": "Matrix", "statuses": ["active"], "action": "save"}
    company_form = {"name": "Edited", "timezone": "Europe/Vilnius", "digest_hour": "9", "weekly_day": "1"}
    return {
        ("GET", "/"): Case("/", 303, public=True),
        ("GET", "/api/openapi.json"): Case("/api/openapi.json", 200, public=True),
        ("GET", "/login"): Case("/login", 200, public=True),
        ("POST", "/login"): Case("/login", 401, public=True, data={"email": "x@y.z", "password": "wrong"}),
        ("POST", "/logout"): Case("/logout", 303, order=9),
        # tenders: every role
        ("GET", "/tenders"): Case("/tenders?q=laser&sort=score", 200),
        ("GET", "/tenders/export.csv"): Case("/tenders/export.csv", 200),
        ("GET", "/tenders/export.ocds.json"): Case("/tenders/export.ocds.json?source=esa", 200),
        ("GET", "/tenders/{tender_id}/ocds.json"): Case(f"/tenders/{seed.tender}/ocds.json", 200),
        ("GET", "/tenders/{tender_id}"): Case(f"/tenders/{seed.tender}", 200),
        ("GET", "/api/tenders"): Case("/api/tenders", 200),
        ("GET", "/api/tenders/{tender_id}"): Case(f"/api/tenders/{seed.tender}", 200),
        # subscribers: admin and managers, scoped by cluster
        ("GET", "/companies"): Case("/companies", 200, SUBSCRIBERS),
        ("GET", "/companies/new"): Case("/companies/new", 200, SUBSCRIBERS),
        ("POST", "/companies/new"): Case(
            "/companies/new",
            303,
            SUBSCRIBERS,
            scoped=True,
            data={"cluster_id": seed.cluster_a, "name": "New Co"},
        ),
        ("GET", "/companies/{company_id}"): Case(f"/companies/{seed.company_a}", 200, SUBSCRIBERS, True),
        ("POST", "/companies/{company_id}/edit"): Case(
            f"/companies/{seed.company_a}/edit", 303, SUBSCRIBERS, True, data=company_form
        ),
        ("POST", "/companies/{company_id}/pause"): Case(
            f"/companies/{seed.company_a}/pause", 303, SUBSCRIBERS, True
        ),
        ("POST", "/companies/{company_id}/delete"): Case(
            f"/companies/{seed.victim_company_a}/delete",
            303,
            SUBSCRIBERS,
            True,
            order=5,
            data={"confirm": "Doomed Optics"},
        ),
        ("POST", "/companies/{company_id}/channels"): Case(
            f"/companies/{seed.company_a}/channels",
            303,
            SUBSCRIBERS,
            True,
            data={"target": "new@example.org"},
        ),
        ("POST", "/channels/{channel_id}/delete"): Case(
            f"/channels/{seed.victim_channel_a}/delete", 303, SUBSCRIBERS, True, order=5
        ),
        ("POST", "/channels/{channel_id}/toggle"): Case(
            f"/channels/{seed.channel_a}/toggle", 303, SUBSCRIBERS, True
        ),
        ("POST", "/channels/{channel_id}/test"): Case(
            f"/channels/{seed.channel_a}/test", 303, SUBSCRIBERS, True
        ),
        ("GET", "/companies/{company_id}/profiles/new"): Case(
            f"/companies/{seed.company_a}/profiles/new", 200, SUBSCRIBERS, True
        ),
        ("POST", "/companies/{company_id}/profiles/new"): Case(
            f"/companies/{seed.company_a}/profiles/new", 303, SUBSCRIBERS, True, data=profile_form
        ),
        ("GET", "/profiles/{profile_id}"): Case(f"/profiles/{seed.profile_a}", 200, SUBSCRIBERS, True),
        ("POST", "/profiles/{profile_id}"): Case(
            f"/profiles/{seed.profile_a}",
            200,
            SUBSCRIBERS,
            True,
            data={"name": "Lasers", "statuses": ["active"], "action": "preview"},
        ),
        ("POST", "/profiles/{profile_id}/pause"): Case(
            f"/profiles/{seed.profile_a}/pause", 303, SUBSCRIBERS, True
        ),
        ("POST", "/profiles/{profile_id}/delete"): Case(
            f"/profiles/{seed.victim_profile_a}/delete", 303, SUBSCRIBERS, True, order=5
        ),
        ("GET", "/alerts"): Case("/alerts", 200, SUBSCRIBERS),
        ("POST", "/deliveries/{delivery_id}/retry"): Case(
            f"/deliveries/{seed.dead_delivery_a}/retry", 303, SUBSCRIBERS, True
        ),
        # operations: admin and operator
        ("GET", "/operations"): Case("/operations", 200, OPERATIONS),
        ("GET", "/operations/runs"): Case("/operations/runs?source=esa", 200, OPERATIONS),
        ("GET", "/operations/runs/{run_id}"): Case(f"/operations/runs/{seed.run}", 200, OPERATIONS),
        ("POST", "/operations/sources/{source}/toggle"): Case(
            "/operations/sources/esa/toggle", 303, OPERATIONS
        ),
        ("POST", "/operations/sources/{source}/crawl"): Case(
            "/operations/sources/esa/crawl", 303, OPERATIONS
        ),
        # own account and administration
        ("GET", "/account"): Case("/account", 200),
        ("POST", "/account/tokens"): Case("/account/tokens", 200, data={"name": "matrix"}),
        ("POST", "/account/tokens/{token_id}/revoke"): Case("/account/tokens/999999/revoke", 404),
        ("GET", "/admin/users"): Case("/admin/users", 200, ADMIN),
        ("POST", "/admin/users"): Case(
            "/admin/users",
            303,
            ADMIN,
            data={"email": "new.op@example.org", "password": "long enough password", "role": "operator"},
        ),
        ("POST", "/admin/users/{user_id}/unlock"): Case(
            f"/admin/users/{seed.user_ids['operator']}/unlock", 303, ADMIN
        ),
        ("POST", "/admin/clusters"): Case("/admin/clusters", 303, ADMIN, data={"name": "BigScience.dk"}),
        # public, token-protected
        ("GET", "/unsubscribe/{token}"): Case(f"/unsubscribe/{unsub}", 200, public=True),
        ("POST", "/unsubscribe/{token}"): Case(f"/unsubscribe/{unsub}", 200, public=True, order=8),
        ("GET", "/feedback/{token}/{verdict}"): Case(f"/feedback/{fb}/relevant", 200, public=True),
        ("POST", "/feedback/{token}/{verdict}"): Case(f"/feedback/{fb}/not-relevant", 200, public=True),
        ("GET", "/profiles/feed/{token}.rss"): Case(f"/profiles/feed/{feed}.rss", 200, public=True),
        ("GET", "/profiles/feed/{token}.atom"): Case(f"/profiles/feed/{feed}.atom", 200, public=True),
        ("GET", "/profiles/feed/{token}.ics"): Case(f"/profiles/feed/{feed}.ics", 200, public=True),
        **_observability_cases(),
    }


def _observability_cases() -> dict[tuple[str, str], Case]:
    """The service issue's probes, public when its module is present (503: no scheduler in tests)."""
    try:
        from tenderwatch import observability  # type: ignore[attr-defined,unused-ignore]  # noqa: F401
    except ImportError:
        return {}
    return {
        ("GET", "/metrics"): Case("/metrics", 200, public=True),
        ("GET", "/healthz"): Case("/healthz", 503, public=True),
    }


def app_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every endpoint (HEAD aside), mounts excluded (checked separately)."""
    found = set()
    for context in iter_route_contexts(app.routes):
        for method in getattr(context.original_route, "methods", None) or ():
            if method != "HEAD":
                found.add((method, context.path))
    return found


def test_every_route_has_a_matrix_entry(seed: Seed) -> None:
    routes = app_routes(create_app())
    matrix = set(cases(seed))
    assert routes - matrix == set(), "routes without an authorization-matrix entry"
    assert matrix - routes == set(), "matrix entries for routes that no longer exist"


def expected(case: Case, role: str) -> int:
    if case.public:
        return case.ok
    if role == "anonymous":
        return 401 if case.path.startswith("/api/") else 303
    if role not in case.allowed:
        return 403
    if case.scoped and role == "manager_b":
        return 404
    return case.ok


def _call(client: WebClient, method: str, case: Case):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(case.path)
    return client.form(case.path, case.data)


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(app, seed: Seed, role: str) -> None:  # type: ignore[no-untyped-def]
    client = login(app, role)
    failures = []
    for (method, template), case in sorted(cases(seed).items(), key=lambda kv: (kv[1].order, kv[0])):
        response = _call(client, method, case)
        want = expected(case, role)
        if response.status_code != want:
            failures.append(f"{method} {template}: got {response.status_code}, want {want}")
        elif want == 303 and role == "anonymous" and not case.public:
            assert response.headers["location"].startswith("/login?next=")
    assert client.get("/static/style.css").status_code == 200
    client.close()
    assert not failures, f"{role}:\n" + "\n".join(failures)
