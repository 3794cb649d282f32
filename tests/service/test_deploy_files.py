"""docker-compose.yml and the Dockerfile stay true to the real commands (no Docker engine here)."""

from __future__ import annotations

import re

import yaml
from typer.main import get_command

from tenderwatch.cli import app
from tests.helpers import REPO


def test_compose_structure() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "tenderwatch", "mail"}
    db = services["db"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    assert "pgdata" in compose["volumes"]
    tw = services["tenderwatch"]
    assert tw["depends_on"]["db"]["condition"] == "service_healthy"
    assert tw["env_file"] == ".env"
    assert tw["environment"]["TENDERWATCH_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert tw["command"][0] in get_command(app).commands  # type: ignore[attr-defined]
    assert tw["command"] == ["run"]
    example = (REPO / ".env.example").read_text()
    for name in re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yml").read_text()):
        assert f"{name}=" in example
    assert "TENDERWATCH_SECRET_KEY=" in example and "TENDERWATCH_SMTP_URL=smtp://mail:1025" in example


def test_dockerfile_installs_chromium_and_runs_the_cli() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"apt-get install[^\n]*\bchromium\b", text)
    assert 'ENTRYPOINT ["tini", "--", "tenderwatch"]' in text and 'CMD ["run"]' in text
    assert "/healthz" in text
