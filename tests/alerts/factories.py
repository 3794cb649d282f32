"""Small builders for subscriptions and tenders in tests (tenders go through the real upsert, so events and
version diffs are the ones a crawl produces)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from tenderwatch.items import TenderItem
from tenderwatch.storage.models import Tender
from tenderwatch.storage.subscriptions import Channel, Cluster, Company, Profile
from tenderwatch.storage.tenders import upsert_batch


def company(session: Session, name: str = "Example Optics UAB", **kw: Any) -> Company:
    cluster = Cluster(name=f"cluster of {name}")
    session.add(cluster)
    session.flush()
    assert cluster.id is not None
    row = Company(cluster_id=cluster.id, name=name, timezone=kw.pop("timezone", "Europe/Vilnius"), **kw)
    session.add(row)
    session.flush()
    return row


def channel(session: Session, owner: Company, target: str) -> Channel:
    from tenderwatch.alerts.channels import parse_channel

    assert owner.id is not None
    parsed = parse_channel(target if "://" in target or target.startswith("email:") else f"email:{target}")
    row = Channel(company_id=owner.id, kind=parsed.kind, target=parsed.target)
    session.add(row)
    session.flush()
    return row


def profile(session: Session, owner: Company, name: str = "Lasers", **kw: Any) -> Profile:
    assert owner.id is not None
    row = Profile(company_id=owner.id, name=name, **kw)
    session.add(row)
    session.flush()
    return row


def tender_item(source_id: str, **kw: Any) -> TenderItem:
    data: dict[str, Any] = {
        "source": kw.pop("source", "esa"),
        "source_id": source_id,
        "title": kw.pop("title", f"Laser optics {source_id}"),
        "url": kw.pop("url", f"https://portal.example/{source_id}"),
        "status": kw.pop("status", "active"),
        "reference": kw.pop("reference", f"REF-{source_id}"),
        "buyer": kw.pop("buyer", "European Space Agency"),
    }
    data.update(kw)
    return TenderItem.model_validate(data)


def store(session: Session, item: TenderItem, *, scores: dict[str, float] | None = None) -> Tender:
    """Upsert like the pipeline does (classification as extra columns)."""
    scores = scores if scores is not None else {"laser_photonics": 0.9}
    extra = {"scores": scores, "categories": [k for k, v in scores.items() if v >= 0.5]}
    upsert_batch(session, [(item, extra)])
    session.flush()
    from sqlmodel import select

    tender = session.exec(
        select(Tender).where(Tender.source == item.source, Tender.source_id == item.source_id)
    ).one()
    return tender


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
