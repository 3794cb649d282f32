"""Token endpoints from e-mails (RFC 8058 unsubscribe, feedback, RSS/Atom/ICS), the JSON API, exports."""

from __future__ import annotations

import csv
import io
from datetime import date

import feedparser
from icalendar import Calendar
from sqlalchemy import Engine
from sqlmodel import Session, select

from tenderwatch.alerts.tokens import sign
from tenderwatch.storage.accounts import Feedback
from tenderwatch.storage.subscriptions import Channel
from tests.web.conftest import Seed, WebClient


def test_rfc8058_one_click_unsubscribe(app, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    mail_provider = WebClient(app, follow_redirects=False)  # no cookie, no CSRF token: the token is the key
    token = seed.unsubscribe_token()
    response = mail_provider.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.text == "unsubscribed"
    with Session(engine) as s:
        channel = s.get(Channel, seed.channel_a)
        assert channel is not None and channel.active is False and channel.unsubscribed_at is not None
    again = mail_provider.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # idempotent


def test_unsubscribe_page_asks_before_acting(app, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    browser = WebClient(app, follow_redirects=False)
    token = seed.unsubscribe_token()
    page = browser.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and f'action="/unsubscribe/{token}"' in page.text
    with Session(engine) as s:
        assert s.get(Channel, seed.channel_a).active  # type: ignore[union-attr]  # GET changed nothing
    done = browser.post(f"/unsubscribe/{token}")
    assert done.status_code == 200 and "no more alerts" in done.text
    assert "sales@photonforge.example" in done.text  # the recipient sees which address stops
    forged = browser.get("/unsubscribe/not-a-token")
    assert forged.status_code == 404
    other_purpose = sign("feedback", {"channel": seed.channel_a})  # a feedback token cannot unsubscribe
    assert browser.post(f"/unsubscribe/{other_purpose}").status_code == 404


def test_feedback_is_stored_and_visible_to_the_manager(app, client_for, seed: Seed, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    anonymous = WebClient(app, follow_redirects=False)
    token = seed.feedback_token()
    assert anonymous.get(f"/feedback/{token}/relevant").status_code == 200
    with Session(engine) as s:
        assert s.exec(select(Feedback)).first() is None
    assert anonymous.post(f"/feedback/{token}/relevant").status_code == 200
    assert anonymous.post(f"/feedback/{token}/not-relevant").status_code == 200  # the latest click counts
    with Session(engine) as s:
        rows = s.exec(select(Feedback)).all()
        assert len(rows) == 1 and rows[0].relevant is False
    assert anonymous.post(f"/feedback/{token}/maybe").status_code == 404
    manager_page = client_for("manager_a").get(f"/companies/{seed.company_a}").text
    assert "not relevant" in manager_page and "Supply of a femtosecond laser system" in manager_page
    assert "not relevant" in client_for("manager_a").get("/alerts").text
    assert "Supply of a femtosecond" not in client_for("manager_b").get("/alerts").text.split("Relevance")[1]


def test_rss_and_atom_feeds_parse(app, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = WebClient(app)
    token = seed.feed_token()
    for suffix, version in (("rss", "rss20"), ("atom", "atom10")):
        response = client.get(f"/profiles/feed/{token}.{suffix}")
        assert response.status_code == 200
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == version
        titles = {entry.title for entry in feed.entries}
        assert titles == {"Supply of a femtosecond laser system", "Magnet power converters"}
    assert client.get("/profiles/feed/forged.rss").status_code == 404


def test_ics_calendar_parses_with_all_day_date_only_deadlines(app, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    response = WebClient(app).get(f"/profiles/feed/{seed.feed_token()}.ics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = {str(e["summary"]): e for e in calendar.walk("VEVENT")}
    assert set(events) == {
        "Deadline: Supply of a femtosecond laser system",
        "Deadline: Magnet power converters",
    }
    all_day = events["Deadline: Magnet power converters"]["dtstart"].dt
    assert type(all_day) is date  # a date-only deadline is an all-day event
    timed = events["Deadline: Supply of a femtosecond laser system"]["dtstart"].dt
    assert timed.tzinfo is not None


def test_api_needs_a_token_and_accepts_bearer(app, client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    anonymous = WebClient(app)
    assert anonymous.get("/api/tenders").status_code == 401
    assert anonymous.get("/api/tenders", headers={"Authorization": "Bearer tw_wrong"}).status_code == 401
    page = client_for("operator").form("/account/tokens", {"name": "crm"}).text
    token = page.split('shown once): <code class="mono">')[1].split("<")[0]
    response = anonymous.get("/api/tenders?q=laser", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["total"] == 2
    pages = anonymous.get("/tenders", headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    assert pages.status_code == 303  # API tokens open the API, not the admin pages
    schema = anonymous.get("/api/openapi.json").json()
    assert "/api/tenders" in schema["paths"] and "/companies" not in schema["paths"]


def test_api_token_can_be_revoked(app, client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    owner = client_for("admin")
    token = owner.form("/account/tokens", {"name": "x"}).text.split('class="mono">')[1].split("<")[0]
    headers = {"Authorization": f"Bearer {token}"}
    assert WebClient(app).get("/api/tenders", headers=headers).status_code == 200
    assert client_for("operator").form("/account/tokens/1/revoke").status_code == 404  # not theirs
    assert owner.form("/account/tokens/1/revoke").status_code == 303
    assert WebClient(app).get("/api/tenders", headers=headers).status_code == 401


def test_csv_export_follows_the_filter(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    response = client_for("operator").get("/tenders/export.csv?category=laser_photonics")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["title"] for r in rows] == ["Supply of a femtosecond laser system"]
    assert rows[0]["cpv"] == "38636100" and rows[0]["source"] == "esa"


def test_ocds_release_package(client_for, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    client = client_for("operator")
    package = client.get(f"/tenders/{seed.tender}/ocds.json").json()
    assert package["version"] == "1.1" and len(package["releases"]) == 1
    release = package["releases"][0]
    assert release["ocid"] == "ocds-tndrwt-esa-T1" and release["tag"] == ["tender"]
    tender = release["tender"]
    assert tender["title"] == "Supply of a femtosecond laser system" and tender["status"] == "active"
    assert tender["items"][0]["classification"] == {"scheme": "CPV", "id": "38636100"}
    assert tender["tenderPeriod"]["endDate"].endswith("+00:00")
    assert tender["documents"][0]["url"] == "https://esa.example/tenders/1"
    assert release["buyer"]["name"] == "European Space Agency"
    assert release["parties"][0]["roles"] == ["buyer"]
    many = client.get("/tenders/export.ocds.json?q=power").json()
    (date_only,) = many["releases"]
    assert date.fromisoformat(
        date_only["tender"]["tenderPeriod"]["endDate"]
    )  # a date-only deadline stays a date
    assert date_only["tender"]["id"] == "ESA-0003"


def test_users_add_cli(tw_env: dict[str, str], engine: Engine) -> None:
    from typer.testing import CliRunner

    from tenderwatch.cli import app as cli_app
    from tenderwatch.storage.accounts import User, UserCluster

    runner = CliRunner()

    def add(*args: str, password: str = "a long enough password"):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, ["users", "add", *args, "--password-stdin"], input=password + "\n")

    result = add("Boss@Example.org", "--role", "manager", "--cluster", "LITEK")
    assert result.exit_code == 0, result.output
    assert "boss@example.org (manager) created" in result.output
    with Session(engine) as s:
        user = s.exec(select(User).where(User.email == "boss@example.org")).one()
        assert user.password_hash.startswith("$argon2") and "long enough" not in user.password_hash
        assert len(s.exec(select(UserCluster).where(UserCluster.user_id == user.id)).all()) == 1
    assert add("boss@example.org", "--role", "admin").exit_code == 2
    assert add("x@example.org", "--role", "operator", password="short").exit_code == 2
    assert add("y@example.org", "--role", "manager").exit_code == 2
    assert add("z@example.org", "--role", "king").exit_code == 2


def test_web_command_serves_the_app_factory(tw_env: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import uvicorn
    from typer.testing import CliRunner

    from tenderwatch.cli import app as cli_app

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    result = CliRunner().invoke(cli_app, ["web", "--port", "8123"])
    assert result.exit_code == 0, result.output
    ((args, kwargs),) = calls
    assert args == ("tenderwatch.web.app:create_app",) and kwargs["factory"] is True
    assert kwargs["port"] == 8123 and kwargs["host"] == "127.0.0.1"
