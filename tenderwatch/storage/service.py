"""Service instances: one row per running ``tenderwatch run`` with its role and heartbeat.

``/healthz`` in any process (leader or hot standby) reads these rows to say whether a scheduler is alive,
so the check works across hosts sharing one PostgreSQL database, not just inside the leader.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, String, delete
from sqlmodel import Field, Session, SQLModel, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.types import UTCDateTime


class ServiceInstance(SQLModel, table=True):
    __tablename__ = "service_instance"

    id: str = Field(sa_column=Column(String(128), primary_key=True))  # host:pid:random
    host: str = Field(sa_column=Column(String(255), nullable=False))
    pid: int
    role: str = Field(sa_column=Column(String(16), nullable=False))  # leader | standby
    started_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))
    heartbeat_at: datetime = Field(default_factory=now_utc, sa_column=Column(UTCDateTime(), nullable=False))


def beat(session: Session, instance: ServiceInstance, role: str) -> None:
    """Record that ``instance`` is alive in ``role`` now (insert or update its row)."""
    row = session.get(ServiceInstance, instance.id)
    if row is None:
        row = ServiceInstance(id=instance.id, host=instance.host, pid=instance.pid, role=role)
    row.role = role
    row.heartbeat_at = now_utc()
    session.add(row)


def forget(session: Session, instance_id: str, *, older_than: timedelta | None = None) -> None:
    """Remove this instance's row on a clean stop, and rows of instances silent for ``older_than``."""
    session.exec(delete(ServiceInstance).where(col(ServiceInstance.id) == instance_id))
    if older_than is not None:
        cutoff = now_utc() - older_than
        session.exec(delete(ServiceInstance).where(col(ServiceInstance.heartbeat_at) < cutoff))


def live_leader(session: Session, max_age: timedelta) -> ServiceInstance | None:
    """The leader whose heartbeat is newer than ``max_age``, if any."""
    cutoff = now_utc() - max_age
    query = (
        select(ServiceInstance)
        .where(ServiceInstance.role == "leader", col(ServiceInstance.heartbeat_at) >= cutoff)
        .order_by(col(ServiceInstance.heartbeat_at).desc())
    )
    return session.exec(query).first()
