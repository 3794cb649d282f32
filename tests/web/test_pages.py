"""What the pages show and refuse: escaping, masked secrets, cluster scoping, CSRF, lockout, headers."""

from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.storage.accounts import User
from tenderwatch.storage.models import SourceState, Tender
from tenderwatch.storage.outbox import Delivery
from tenderwatch.storage.subscriptions import Channel, Company, Profile
from tenderwatch.web.accounts import MAX_FAILED_LOGINS
from tests.web.conftest import EMAILS, PASSWORD, WEBHOOK, XSS_TITLE, Seed, WebClient, csrf_of


def test_script_in_a_tender_title_is_shown_as_text(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = client_for("operator")
    for path in ("/tenders", f"/tenders/{seed.xss_tender}"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
        assert 'href="javascript:' not in html  # portal URLs are links only when http(s)
    assert XSS_TITLE in client.get(f"/api/tenders/{seed.xss_tender}").json()["title"]


def test_webhook_secrets_are_never_rendered(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = client_for("manager_a")
    pages = [f"/companies/{seed.company_a}", "/alerts", f"/unsubscribe/{seed.unsubscribe_token()}"]
    for path in pages:
        html = client.get(path).text
        assert "SECRETSIGNATURE42" not in html and "abcdef0123456789" not in html, path
    company_page = client.get(f"/companies/{seed.company_a}").text
    assert "workflows://prod-12.westeurope.logic.azure.com" in company_page  # the host is fine to show
    assert "sales@photonforge.example" in company_page  # addresses are not secrets


def test_security_headers_and_cookie_flags(app, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = WebClient(app, follow_redirects=False)
    response = client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    cookie = response.headers["set-cookie"].lower()
    assert (
        "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    )  # plain-HTTP test site
    assert "<script" not in response.text and "style=" not in response.text


def test_session_cookie_is_secure_behind_https(engine: Engine, tw_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tenderwatch.config import get_settings
    from tenderwatch.web.app import create_app

    monkeypatch.setenv("TENDERWATCH_PUBLIC_URL", "https://tenders.example.org")
    get_settings.cache_clear()
    client = WebClient(create_app(get_settings()), follow_redirects=False)
    response = client.get("/login")
    assert "secure" in response.headers["set-cookie"].lower()
    assert "max-age" in response.headers["strict-transport-security"]


def test_manager_lists_show_only_their_cluster(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    a, b = client_for("manager_a"), client_for("manager_b")
    assert "Photon Forge" in a.get("/companies").text and "Beamline Works" not in a.get("/companies").text
    assert "Beamline Works" in b.get("/companies").text and "Photon Forge" not in b.get("/companies").text
    alerts_b = b.get("/alerts").text
    assert "Lasers" not in alerts_b and "Magnets" in alerts_b
    # the tender page lists only the manager's own matched profiles
    detail_b = b.get(f"/tenders/{seed.tender}").text
    assert "Magnets" in detail_b and "Photon Forge" not in detail_b
    # a manager cannot create a company in another cluster, even by posting its id
    response = b.form("/companies/new", {"cluster_id": seed.cluster_a, "name": "Intruder"})
    assert response.status_code == 404


def test_operator_sees_no_subscriber_data(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = client_for("operator")
    detail = client.get(f"/tenders/{seed.tender}").text
    assert "Photon Forge" not in detail and "Lasers" not in detail and "2 alert(s)" in detail
    nav = client.get("/tenders").text
    assert 'href="/companies"' not in nav and 'href="/operations"' in nav


def test_forms_without_the_csrf_token_are_refused(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = client_for("admin")
    response = client.post(f"/companies/{seed.company_a}/pause", data={"csrf_token": "forged"})
    assert response.status_code == 403
    response = client.post(f"/companies/{seed.company_a}/pause")
    assert response.status_code == 403
    with Session(engine) as s:
        assert s.get(Company, seed.company_a).active  # type: ignore[union-attr]


def test_login_locks_after_ten_failures(app, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = WebClient(app, follow_redirects=False)
    csrf = csrf_of(client.get("/login").text)
    email = EMAILS["operator"]
    for _ in range(MAX_FAILED_LOGINS):
        bad = client.post("/login", data={"email": email, "password": "nope", "csrf_token": csrf})
        assert bad.status_code == 401
    good = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert good.status_code == 401 and "locked" in good.text
    with Session(engine) as s:
        user = s.exec(select(User).where(User.email == email)).one()
        assert user.locked_until is not None
    # an admin unlocks it
    admin = WebClient(app, follow_redirects=False)
    admin.csrf = csrf_of(admin.get("/login").text)
    admin.post("/login", data={"email": EMAILS["admin"], "password": PASSWORD, "csrf_token": admin.csrf})
    admin.csrf = csrf_of(admin.get("/admin/users").text)
    assert admin.form(f"/admin/users/{seed.user_ids['operator']}/unlock").status_code == 303
    good = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert good.status_code == 303


def test_login_redirects_only_to_local_paths(app, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = WebClient(app, follow_redirects=False)
    csrf = csrf_of(client.get("/login?next=//evil.example").text)
    response = client.post(
        "/login",
        data={"email": EMAILS["admin"], "password": PASSWORD, "csrf_token": csrf, "next": "//evil.example"},
    )
    assert response.headers["location"] == "/tenders"
    assert client.get("/tenders/999999").status_code == 404


def test_tender_detail_shows_sources_classification_history(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from tenderwatch.storage.calls import LinkDecision, TenderNotice

    with Session(engine) as s:
        twin = s.exec(select(Tender).where(Tender.source == "ted")).one()
        s.add(TenderNotice(tender_id=twin.id, source="ted", notice_id="123456-2026"))  # type: ignore[arg-type]
        s.add(
            LinkDecision(
                tender_id=twin.id,
                other_id=seed.tender,
                decision="merged",
                method="reference",  # type: ignore[arg-type]
                confidence=0.97,
            )
        )
        s.commit()
    html = client_for("admin").get(f"/tenders/{seed.tender}").text
    assert "123456-2026" in html and "merged with" in html and "by reference (0.97)" in html
    assert "https://esa.example/tenders/1" in html and "https://esa.example/tenders/4" in html  # TED twin
    assert "keyword: femtosecond laser" in html and "0.92" in html
    assert "Version 2" in html and "2026-02-01" in html
    assert "Photon Forge" in html and "Beamline Works" in html  # the admin sees every match


def test_tender_search_filters_and_pages(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = client_for("operator")

    def titles(query: str) -> list[str]:
        return [t["title"] for t in client.get(f"/api/tenders?{query}").json()["items"]]

    assert titles("q=femtosecond") == ["Supply of a femtosecond laser system"]
    assert titles("q=ESA-0003") == ["Magnet power converters"]
    assert titles("category=engineering&min_score=0.5") == ["Magnet power converters"]
    assert titles("min_score=0.9") == ["Supply of a femtosecond laser system"]
    assert titles("source=ted") == ["Supply of a femtosecond laser system"]
    assert len(titles("deadline_within_days=11")) == 1
    assert titles("status=closed") == []
    page = client.get("/api/tenders?per_page=2&page=2&sort=title").json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert client.get("/api/tenders?min_score=7").status_code == 422
    html = client.get("/tenders?per_page=2").text
    assert "page 1 of 2" in html


def test_profile_preview_then_save(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = client_for("manager_a")
    form = {"name": "Ultrafast", "keywords": "femtosecond", "statuses": ["active", "planned"]}
    preview = client.form(f"/companies/{seed.company_a}/profiles/new", {**form, "action": "preview"})
    assert preview.status_code == 200
    assert "Supply of a femtosecond laser system" in preview.text and "Magnet power" not in preview.text
    with Session(engine) as s:
        assert s.exec(select(Profile).where(Profile.name == "Ultrafast")).first() is None  # not saved
    saved = client.form(f"/companies/{seed.company_a}/profiles/new", {**form, "action": "save"})
    assert saved.status_code == 303
    bad = client.form(f"/companies/{seed.company_a}/profiles/new", {"name": "", "cpv_prefixes": "abc"})
    assert bad.status_code == 400 and "CPV prefixes are digits" in bad.text


def test_company_lifecycle_and_channels(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = client_for("manager_a")
    created = client.form("/companies/new", {"cluster_id": seed.cluster_a, "name": "Lumen SME"})
    assert created.status_code == 303
    company_id = int(re.search(r"/companies/(\d+)", created.headers["location"]).group(1))  # type: ignore[union-attr]
    assert client.form(f"/companies/{company_id}/channels", {"target": WEBHOOK}).status_code == 303
    bad = client.form(f"/companies/{company_id}/channels", {"target": "not a channel"})
    assert "channel%20not%20added" in bad.headers["location"]
    dup = client.form("/companies/new", {"cluster_id": seed.cluster_a, "name": "Lumen SME"})
    assert dup.status_code == 400 and "already has a company" in dup.text
    assert client.form(f"/companies/{company_id}/pause").status_code == 303
    with Session(engine) as s:
        assert s.get(Company, company_id).active is False  # type: ignore[union-attr]
    unconfirmed = client.form(f"/companies/{company_id}/delete", {"confirm": "lumen"})
    assert "confirm" in unconfirmed.headers["location"]
    with Session(engine) as s:
        assert s.get(Company, company_id) is not None
    assert client.form(f"/companies/{company_id}/delete", {"confirm": "Lumen SME"}).status_code == 303
    with Session(engine) as s:
        assert s.get(Company, company_id) is None
        assert s.exec(select(Channel).where(Channel.company_id == company_id)).first() is None


def test_retry_a_dead_delivery(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = client_for("manager_a")
    assert "SMTP 550" in client.get("/alerts?status=dead").text
    assert client.form(f"/deliveries/{seed.dead_delivery_a}/retry").status_code == 303
    with Session(engine) as s:
        assert s.get(Delivery, seed.dead_delivery_a).status == "pending"  # type: ignore[union-attr]


def test_operations_toggle_and_crawl_now(client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = client_for("operator")
    html = client.get("/operations").text
    assert "esa" in html and "<svg" in html and "50%" in html  # chart and per-field validity
    client.form("/operations/sources/esa/crawl")
    client.form("/operations/sources/esa/toggle")
    with Session(engine) as s:
        state = s.get(SourceState, "esa")
        assert state is not None and state.crawl_requested_at is not None and state.enabled is False
    assert "disabled" in client.get("/operations").text
    assert client.form("/operations/sources/nope/crawl").status_code == 404
    run_page = client.get(f"/operations/runs/{seed.run}").text
    assert "Field validity" in run_page and "deadline_at" in run_page


def test_long_text_changes_show_as_word_diffs_escaped() -> None:
    from tenderwatch.web.render import word_diff

    html = str(word_diff("Supply of <b>two</b> lasers for the hall", "Supply of three lasers for the hall"))
    assert html == "Supply of <del>&lt;b&gt;two&lt;/b&gt;</del> <ins>three</ins> lasers for the hall"


def test_password_reset_ends_existing_sessions(app, client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from tenderwatch.cli import app as cli_app

    client = client_for("operator")
    assert client.get("/operations").status_code == 200
    result = CliRunner().invoke(
        cli_app, ["users", "password", EMAILS["operator"], "--password-stdin"], input="a brand new password\n"
    )
    assert result.exit_code == 0, result.output
    assert client.get("/operations").status_code == 303  # the old session cookie no longer works
    unknown = CliRunner().invoke(
        cli_app, ["users", "password", "nobody@x.org", "--password-stdin"], input="x" * 12
    )
    assert unknown.exit_code == 2
