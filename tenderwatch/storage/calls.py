"""One call, several notices and several portals: change notices and cross-portal identity.

- **Change notices.** A TED corrigendum is a new notice (its own publication number) for the same
  procedure. :func:`resolve_same_call` finds the stored call it changes (``amends`` = the changed notice's
  number, else the same ``procedure_id`` in the same source) so the upsert updates that call. Every notice
  folded into a call is kept in ``tender_notice``; an older notice seen again never overwrites a newer one.
- **Cross-portal identity.** When the same call is stored from two sources, the later record points at the
  first one through ``Tender.canonical_id`` (a flat star: members point at the root, never at a member).
  :func:`link_record` decides with the pure rules of :mod:`tenderwatch.matching`; every decision —
  automatic merge, operator split or merge — is a ``tender_link_decision`` row, and a split pair is never
  merged again by the matcher.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Column, Float, String, UniqueConstraint, func, or_, union
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from tenderwatch.dates import now_utc, utc
from tenderwatch.items import TenderItem
from tenderwatch.matching import CallFacts, Match, normalise_reference, ranked_matches
from tenderwatch.storage.models import EventKind, Tender, TenderEvent
from tenderwatch.storage.types import UTCDateTime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CANDIDATE_LIMIT = 500  # candidates read per record; the filters keep real numbers far below this


class TenderNotice(SQLModel, table=True):
    """A notice (original or change notice) whose content was folded into the stored call ``tender_id``."""

    __tablename__ = "tender_notice"
    __table_args__ = (UniqueConstraint("source", "notice_id", name="uq_tender_notice_source_notice"),)

    id: int | None = Field(default=None, primary_key=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)
    source: str = Field(sa_column=Column(String(64), nullable=False))
    notice_id: str = Field(sa_column=Column(String(255), nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    seen_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


class LinkDecision(SQLModel, table=True):
    """Why two records are (or are not) one call: ``merged`` by the matcher or an operator, or ``split``."""

    __tablename__ = "tender_link_decision"

    id: int | None = Field(default=None, primary_key=True)
    tender_id: int = Field(foreign_key="tender.id", index=True)  # the record that was attached/detached
    other_id: int = Field(foreign_key="tender.id", index=True)  # the call's canonical record at the time
    decision: str = Field(sa_column=Column(String(16), nullable=False))  # merged | split
    method: str = Field(sa_column=Column(String(16), nullable=False))  # reference | title | operator
    confidence: float | None = Field(default=None, sa_column=Column(Float))
    created_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


class LinkError(ValueError):
    """An operator asked for a merge or split that cannot be done (message says why)."""


# --- change notices --------------------------------------------------------------------------------


def notice_aliases(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """``(source, notice_id)`` → tender id for notices folded into another call."""
    if not keys:
        return {}
    sources = {source for source, _ in keys}
    ids = {notice for _, notice in keys}
    rows = session.exec(
        select(TenderNotice).where(
            col(TenderNotice.source).in_(sources), col(TenderNotice.notice_id).in_(ids)
        )
    )
    wanted = set(keys)
    return {(r.source, r.notice_id): r.tender_id for r in rows if (r.source, r.notice_id) in wanted}


def resolve_same_call(session: Session, item: TenderItem) -> Tender | None:
    """The stored call of the same source that ``item`` (a new notice) changes, if any."""
    if item.amends:
        found = session.exec(
            select(Tender).where(Tender.source == item.source, Tender.source_id == item.amends)
        ).first()
        if found is not None:
            return found
    if item.procedure_id:
        return session.exec(
            select(Tender)
            .where(Tender.source == item.source, Tender.procedure_id == item.procedure_id)
            .order_by(col(Tender.id))
        ).first()
    return None


def amended_ids(session: Session, tender_ids: Sequence[int | None]) -> set[int]:
    """Which of these calls have notices folded into them (one query per batch, not per item)."""
    ids = [i for i in tender_ids if i is not None]
    if not ids:
        return set()
    rows = session.exec(select(TenderNotice.tender_id).where(col(TenderNotice.tender_id).in_(ids)).distinct())
    return set(rows)


def _notice_rows(session: Session, tender_id: int) -> list[TenderNotice]:
    return list(session.exec(select(TenderNotice).where(TenderNotice.tender_id == tender_id)))


def notices_of(session: Session, tender_id: int) -> list[str]:
    """Notice ids folded into this call, oldest first (empty when it never had a change notice)."""
    rows = _notice_rows(session, tender_id)
    return [r.notice_id for r in sorted(rows, key=lambda r: _order(r.published_at, r.notice_id))]


def _order(published_at: datetime | None, notice_id: str) -> tuple[datetime, str]:
    return (utc(published_at) if published_at else EPOCH, notice_id)


def is_stale(session: Session, tender: Tender, item: TenderItem, *, folded: bool) -> bool:
    """True when ``item`` is an older notice of a call that a newer notice already updated.

    ``folded`` says the item reached this call through another notice (resolver or alias); the call's own
    notices are tracked once a change notice was folded in.
    """
    assert tender.id is not None
    rows = _notice_rows(session, tender.id)
    if not rows and not folded:
        return False
    known = [_order(r.published_at, r.notice_id) for r in rows]
    if not rows:
        known.append(_order(tender.published_at, tender.source_id))
    latest = max(known)
    return item.source_id != latest[1] and _order(item.published_at, item.source_id) < latest


def fold_notice(session: Session, tender: Tender, item: TenderItem) -> None:
    """Remember that ``item``'s notice belongs to ``tender`` (and, the first time, the call's own notice)."""
    assert tender.id is not None
    rows = _notice_rows(session, tender.id)
    present = {r.notice_id for r in rows}
    if not rows and tender.source_id != item.source_id:
        session.add(
            TenderNotice(
                tender_id=tender.id,
                source=tender.source,
                notice_id=tender.source_id,
                published_at=tender.published_at,
            )
        )
    if item.source_id not in present:
        session.add(
            TenderNotice(
                tender_id=tender.id,
                source=item.source,
                notice_id=item.source_id,
                published_at=item.published_at,
            )
        )


# --- cross-portal identity -------------------------------------------------------------------------


def deadline_day(tender: Tender) -> date | None:
    if tender.deadline_date is not None:
        return tender.deadline_date
    return utc(tender.deadline_at).date() if tender.deadline_at else None


def facts(tender: Tender) -> CallFacts:
    assert tender.id is not None
    return CallFacts(
        id=tender.id,
        source=tender.source,
        title=tender.title,
        reference=tender.reference,
        procedure_id=tender.procedure_id,
        buyer=tender.buyer,
        deadline=deadline_day(tender),
    )


def root_id(tender: Tender) -> int:
    assert tender.id is not None
    return tender.canonical_id or tender.id


def members(session: Session, root: int) -> list[Tender]:
    """Every record of the call whose canonical record is ``root`` (root first)."""
    rows = session.exec(
        select(Tender)
        .where(or_(col(Tender.id) == root, col(Tender.canonical_id) == root))
        .order_by(col(Tender.id))
    )
    return sorted(rows, key=lambda t: (t.id != root, t.id))


def stored_sources(session: Session) -> set[str]:
    """The sources that have records, read as an index skip-scan: one seek per source, not per row."""
    found: set[str] = set()
    query = select(Tender.source).order_by(col(Tender.source)).limit(1)
    while (source := session.exec(query).first()) is not None:
        found.add(source)
        query = select(Tender.source).where(col(Tender.source) > source).order_by(col(Tender.source)).limit(1)
    return found


def reference_keys(tender: Tender) -> list[str]:
    """The normalised keys the reference rule compares (``F4E-OMF-2021 (TB23)`` → ``F4E-OMF-2021``)."""
    keys = {normalise_reference(tender.reference), normalise_reference(tender.procedure_id)}
    return sorted(key for key in keys if key)


def candidate_query(tender: Tender, rivals: Collection[str]) -> SelectOfScalar[Tender] | None:
    """Records of the ``rivals`` sources that could be the same call, found through indexes only.

    One indexed lookup per rule, united: equal reference keys (``ref_key``/``procedure_key``), and — the
    title rule needs both buyers and deadlines a day apart — each rival's records with a deadline in the
    window around this record's deadline day (``ix_tender_source_deadline``; the window is wide enough for
    any portal time zone). None (no query) when nothing can match: no rival source stored, or a record
    with neither a reference nor a deadline and buyer.
    """
    sources = sorted(set(rivals) - {tender.source})
    if not sources:
        return None
    # key lookups filter the source with != so that no planner prefers the source index to the key's
    others = (Tender.source != tender.source, Tender.id != tender.id)
    parts = []
    keys = reference_keys(tender)
    if keys:
        parts.append(select(Tender.id).where(col(Tender.ref_key).in_(keys), *others))
        parts.append(select(Tender.id).where(col(Tender.procedure_key).in_(keys), *others))
    day = deadline_day(tender)
    if day is not None and tender.buyer:
        start = datetime.combine(day - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
        window = col(Tender.deadline_at).between(start, start + timedelta(days=5))
        rival = col(Tender.source).in_(sources)
        parts.append(select(Tender.id).where(rival, window, Tender.id != tender.id))
    if not parts:
        return None
    ids = union(*parts).subquery()
    return (
        select(Tender)
        .where(col(Tender.id).in_(select(ids.c.id)))
        .order_by(col(Tender.id))
        .limit(CANDIDATE_LIMIT)
    )


def _candidates(session: Session, tender: Tender, rivals: Collection[str] | None) -> list[Tender]:
    if rivals is None:
        rivals = stored_sources(session)
    query = candidate_query(tender, rivals)
    return [] if query is None else list(session.exec(query))


def _split_partners(session: Session, tender_id: int) -> set[int]:
    rows = session.exec(
        select(LinkDecision).where(
            LinkDecision.decision == "split",
            or_(col(LinkDecision.tender_id) == tender_id, col(LinkDecision.other_id) == tender_id),
        )
    )
    return {r.other_id if r.tender_id == tender_id else r.tender_id for r in rows}


def find_same_call(
    session: Session, tender: Tender, *, threshold: float, rivals: Collection[str] | None = None
) -> Match | None:
    """The canonical record of another source's call that ``tender`` belongs to, if the rules say so.

    A call holds at most one record per source, and pairs an operator split are never merged again; these
    are checked only for the few candidates the pure rules accept, strongest first. ``rivals`` = the other
    sources stored (read from the database when not given).
    """
    candidates = {c.id: c for c in _candidates(session, tender, rivals)}
    ranked = ranked_matches(facts(tender), [facts(c) for c in candidates.values()], threshold=threshold)
    if not ranked:
        return None
    refused = _split_partners(session, tender.id or 0)
    for match in ranked:
        root = root_id(candidates[match.target_id])
        call = members(session, root)
        if any(m.source == tender.source for m in call) or refused & {m.id for m in call}:
            continue
        return Match(root, match.method, match.confidence)
    return None


def attach(session: Session, tender: Tender, root: int, *, method: str, confidence: float | None) -> None:
    """Make ``tender`` (a standalone record) a member of the call whose canonical record is ``root``."""
    assert tender.id is not None
    tender.canonical_id = root
    session.add(tender)
    session.add(
        LinkDecision(
            tender_id=tender.id, other_id=root, decision="merged", method=method, confidence=confidence
        )
    )


def link_record(
    session: Session, tender: Tender, *, threshold: float, rivals: Collection[str] | None = None
) -> Match | None:
    """Attach a standalone record to the call it belongs to; returns the match (None = its own call)."""
    assert tender.id is not None
    if tender.canonical_id is not None or _has_members(session, tender.id):
        return None
    match = find_same_call(session, tender, threshold=threshold, rivals=rivals)
    if match is not None:
        attach(session, tender, match.target_id, method=match.method, confidence=match.confidence)
    return match


def _has_members(session: Session, tender_id: int) -> bool:
    count = session.exec(
        select(func.count()).select_from(Tender).where(Tender.canonical_id == tender_id)
    ).one()
    return bool(count)


# --- operator actions ------------------------------------------------------------------------------


def split(session: Session, tender_id: int) -> Tender:
    """Detach one record from its call, for good; it becomes a call of its own and gets its "new" event.

    Splitting the canonical record makes the next record the canonical one of the remaining call.
    """
    tender = session.get(Tender, tender_id)
    if tender is None:
        raise LinkError(f"no tender with id {tender_id}")
    call = members(session, root_id(tender))
    if len(call) < 2:
        raise LinkError(f"tender {tender_id} is not merged with any other record")
    rest = [m for m in call if m.id != tender_id]
    new_root = rest[0]
    assert new_root.id is not None
    for member in rest:
        member.canonical_id = None if member is new_root else new_root.id
        session.add(member)
    tender.canonical_id = None
    session.add(tender)
    for member in rest:
        assert member.id is not None
        session.add(
            LinkDecision(tender_id=tender_id, other_id=member.id, decision="split", method="operator")
        )
    _ensure_new_event(session, tender_id)
    session.flush()
    return tender


def merge(session: Session, tender_id: int, into_id: int) -> Tender:
    """Operator merge: ``tender_id`` (a record of its own) joins the call of ``into_id``."""
    tender, target = session.get(Tender, tender_id), session.get(Tender, into_id)
    if tender is None or target is None:
        raise LinkError(f"no tender with id {tender_id if tender is None else into_id}")
    root = root_id(target)
    if root_id(tender) == root:
        raise LinkError(f"tenders {tender_id} and {into_id} are already one call")
    if tender.canonical_id is not None or _has_members(session, tender_id):
        raise LinkError(f"tender {tender_id} is part of another call: split it first")
    if any(m.source == tender.source for m in members(session, root)):
        raise LinkError(f"the call of tender {into_id} already has a record from {tender.source}")
    call_ids = {m.id for m in members(session, root)}
    for decision in session.exec(
        select(LinkDecision).where(
            LinkDecision.decision == "split",
            or_(col(LinkDecision.tender_id) == tender_id, col(LinkDecision.other_id) == tender_id),
        )
    ):
        other = decision.other_id if decision.tender_id == tender_id else decision.tender_id
        if other in call_ids:  # the operator changed their mind: the matcher may see this pair again
            session.delete(decision)
    attach(session, tender, root, method="operator", confidence=None)
    session.flush()
    return tender


def _ensure_new_event(session: Session, tender_id: int) -> None:
    exists = session.exec(
        select(TenderEvent).where(TenderEvent.tender_id == tender_id, TenderEvent.kind == EventKind.NEW)
    ).first()
    if exists is None:
        session.add(TenderEvent(tender_id=tender_id, kind=EventKind.NEW, version=1))


def decisions(session: Session, tender_ids: Sequence[int]) -> list[LinkDecision]:
    """Link decisions that concern any of ``tender_ids``, oldest first (for ``tenders show``)."""
    if not tender_ids:
        return []
    ids = list(tender_ids)
    return list(
        session.exec(
            select(LinkDecision)
            .where(or_(col(LinkDecision.tender_id).in_(ids), col(LinkDecision.other_id).in_(ids)))
            .order_by(col(LinkDecision.id))
        )
    )
