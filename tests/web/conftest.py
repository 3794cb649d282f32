"""Fixtures for the web admin: a seeded database (two clusters, one user per role) and logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.alerts.tokens import sign
from tenderwatch.config import get_settings
from tenderwatch.dates import now_utc
from tenderwatch.storage.models import CrawlRun, SourceState, Tender, TenderVersion
from tenderwatch.storage.outbox import Alert, Delivery
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile
from tenderwatch.web.accounts import create_user
from tenderwatch.web.app import create_app

PASSWORD = "correct horse battery"
ROLES = ("admin", "manager_a", "manager_b", "operator", "anonymous")
EMAILS = {
    "admin": "admin@example.org",
    "manager_a": "manager.a@example.org",
    "manager_b": "manager.b@example.org",
    "operator": "operator@example.org",
}
WEBHOOK = "workflows://prod-12.westeurope.logic.azure.com:443/abcdef0123456789/SECRETSIGNATURE42/"
XSS_TITLE = '<script>alert("pwned")</script> Laser diode supply'


@dataclass
class Seed:
    """Ids of the seeded rows; "victim" rows exist to be deleted by the authorization matrix."""

    cluster_a: int
    cluster_b: int
    company_a: int
    company_b: int
    victim_company_a: int
    profile_a: int
    victim_profile_a: int
    channel_a: int
    webhook_channel_a: int
    victim_channel_a: int
    tender: int
    xss_tender: int
    date_only_tender: int
    alert_a: int
    dead_delivery_a: int
    run: int
    user_ids: dict[str, int]

    def unsubscribe_token(self) -> str:
        return sign("unsubscribe", {"channel": self.channel_a})

    def feedback_token(self) -> str:
        return sign("feedback", {"alert": self.alert_a})

    def feed_token(self) -> str:
        return sign("profile-feed", {"profile": self.profile_a})


def _tender(n: int, **kw: object) -> Tender:
    base: dict[str, object] = {
        "source": "esa",
        "source_id": f"T{n}",
        "reference": f"ESA-{n:04d}",
        "title": f"Tender {n}",
        "status": "active",
        "content_hash": f"{n:064d}",
        "deadline_at": now_utc() + timedelta(days=10 + n),
        "url": f"https://esa.example/tenders/{n}",
    }
    base.update(kw)
    return Tender(**base)  # type: ignore[arg-type]


def seed_database(engine: Engine) -> Seed:
    with Session(engine, expire_on_commit=False) as s:
        users = {
            role: create_user(
                s,
                email,
                PASSWORD,
                "manager" if role.startswith("manager") else role,
                {"manager_a": ["LITEK"], "manager_b": ["INEUSTAR"]}.get(role),
            )
            for role, email in EMAILS.items()
        }
        s.flush()
        clusters = {c.name: c for c in s.exec(select(Cluster))}
        a, b = clusters["LITEK"], clusters["INEUSTAR"]
        company_a = Company(cluster_id=a.id, name="Photon Forge")  # type: ignore[arg-type]
        company_b = Company(cluster_id=b.id, name="Beamline Works")  # type: ignore[arg-type]
        victim = Company(cluster_id=a.id, name="Doomed Optics")  # type: ignore[arg-type]
        s.add_all([company_a, company_b, victim])
        s.flush()
        profile_a = Profile(company_id=company_a.id, name="Lasers", keywords=["laser"])  # type: ignore[arg-type]
        victim_profile = Profile(company_id=company_a.id, name="Old profile")  # type: ignore[arg-type]
        profile_b = Profile(company_id=company_b.id, name="Magnets", keywords=["magnet"])  # type: ignore[arg-type]
        email = Channel(company_id=company_a.id, kind="email", target="sales@photonforge.example")  # type: ignore[arg-type]
        hook = Channel(company_id=company_a.id, kind="apprise", target=WEBHOOK)  # type: ignore[arg-type]
        victim_channel = Channel(company_id=company_a.id, kind="email", target="old@photonforge.example")  # type: ignore[arg-type]
        channel_b = Channel(company_id=company_b.id, kind="email", target="info@beamline.example")  # type: ignore[arg-type]
        s.add_all([profile_a, victim_profile, profile_b, email, hook, victim_channel, channel_b])
        tender = _tender(
            1,
            title="Supply of a femtosecond laser system",
            description="Ultrafast laser for the beamline",
            categories=["laser_photonics"],
            scores={"laser_photonics": 0.92, "engineering": 0.3},
            why={"laser_photonics": ["keyword: femtosecond laser", "CPV 38636100"]},
            cpv=["38636100"],
            buyer="European Space Agency",
        )
        xss = _tender(
            2,
            title=XSS_TITLE,
            description="<img src=x onerror=alert(1)>",
            url="javascript:alert(2)",
            documents=[{"title": "Specs", "url": "javascript:alert(3)"}],
        )
        date_only = _tender(
            3,
            title="Magnet power converters",
            deadline_at=None,
            deadline_date=date.today() + timedelta(days=20),
            categories=["engineering"],
            scores={"engineering": 0.8},
        )
        s.add_all([tender, xss, date_only])
        s.flush()
        date_only.deadline_at = now_utc().replace(hour=0, minute=0) + timedelta(days=20)
        twin = _tender(4, source="ted", source_id="TED-1", title=tender.title, canonical_id=tender.id)
        s.add(twin)
        s.add(
            TenderVersion(tender_id=tender.id, version=2, diff={"deadline_at": ["2026-01-01", "2026-02-01"]})
        )  # type: ignore[arg-type]
        alert_a = Alert(
            profile_id=profile_a.id, tender_id=tender.id, kind="new", version=1, reasons=["keyword laser"]
        )  # type: ignore[arg-type]
        alert_a2 = Alert(profile_id=profile_a.id, tender_id=date_only.id, kind="new", version=1)  # type: ignore[arg-type]
        alert_b = Alert(profile_id=profile_b.id, tender_id=tender.id, kind="new", version=1)  # type: ignore[arg-type]
        s.add_all([alert_a, alert_a2, alert_b])
        s.flush()
        dead = Delivery(
            alert_id=alert_a.id, channel_id=email.id, status="dead", attempts=8, last_error="SMTP 550"
        )  # type: ignore[arg-type]
        s.add_all([dead, Delivery(alert_id=alert_b.id, channel_id=channel_b.id, status="dead", attempts=8)])  # type: ignore[arg-type]
        run = CrawlRun(
            source="esa",
            status="success",
            items_seen=12,
            items_new=3,
            field_validity={"title": 1.0, "deadline_at": 0.5},
        )
        s.add(run)
        s.flush()
        s.add(SourceState(source="esa", last_run_id=run.id, last_success_at=now_utc()))
        s.commit()
        return Seed(
            cluster_a=a.id,
            cluster_b=b.id,
            company_a=company_a.id,
            company_b=company_b.id,  # type: ignore[arg-type]
            victim_company_a=victim.id,
            profile_a=profile_a.id,
            victim_profile_a=victim_profile.id,  # type: ignore[arg-type]
            channel_a=email.id,
            webhook_channel_a=hook.id,
            victim_channel_a=victim_channel.id,  # type: ignore[arg-type]
            tender=tender.id,
            xss_tender=xss.id,
            date_only_tender=date_only.id,
            alert_a=alert_a.id,  # type: ignore[arg-type]
            dead_delivery_a=dead.id,
            run=run.id,  # type: ignore[arg-type]
            user_ids={role: u.id for role, u in users.items()},  # type: ignore[misc]
        )


@pytest.fixture
def seed(engine: Engine, tw_env: dict[str, str]) -> Seed:
    return seed_database(engine)


@pytest.fixture
def app(seed: Seed):  # type: ignore[no-untyped-def]
    return create_app(get_settings())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


class WebClient(TestClient):
    """A TestClient that knows its session's CSRF token and never follows redirects."""

    csrf: str = ""

    def form(self, path: str, data: dict[str, object] | None = None, **kw: object):  # type: ignore[no-untyped-def]
        return self.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)  # type: ignore[arg-type]


def login(app, role: str) -> WebClient:  # type: ignore[no-untyped-def]
    client = WebClient(app, follow_redirects=False)
    client.csrf = csrf_of(client.get("/login").text)
    if role == "anonymous":
        return client
    response = client.post(
        "/login", data={"email": EMAILS[role], "password": PASSWORD, "csrf_token": client.csrf}
    )
    assert response.status_code == 303, response.text
    client.csrf = csrf_of(client.get("/account").text)
    return client


@pytest.fixture
def client_for(app) -> Iterator[Callable[[str], WebClient]]:  # type: ignore[no-untyped-def]
    clients: list[WebClient] = []

    def make(role: str) -> WebClient:
        client = login(app, role)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters in tests only (production keeps argon2-cffi's defaults)."""
    from argon2 import PasswordHasher

    from tenderwatch.web import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
