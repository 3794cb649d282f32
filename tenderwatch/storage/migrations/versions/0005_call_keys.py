"""Call keys: normalised reference / procedure-id keys on tender, indexed, and a (source, deadline_at) index, for cross-portal matching

Cross-portal candidates used to be found with ``upper(reference) LIKE '%…%'``, a full-table scan per new
tender (O(N²) ingest). The keys are matched by equality on their indexes instead. Existing rows are
backfilled here in batches with the same normalisation the application uses.

Revision ID: 0005_call_keys
Revises: 0005_service
Create Date: 2026-11-28 23:30:48.807777
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenderwatch.matching import normalise_reference

revision: str = '0005_call_keys'
down_revision: str | Sequence[str] | None = '0005_service'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('tender', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('procedure_key', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_tender_procedure_key'), ['procedure_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_tender_ref_key'), ['ref_key'], unique=False)
        batch_op.create_index('ix_tender_source_deadline', ['source', 'deadline_at'], unique=False)
    _backfill(op.get_bind())


def _backfill(bind: sa.engine.Connection) -> None:
    """Compute the keys of every stored tender that has a reference or procedure id, BATCH rows at a time."""
    tender = sa.table(
        'tender',
        sa.column('id', sa.Integer),
        sa.column('reference', sa.String),
        sa.column('procedure_id', sa.String),
        sa.column('ref_key', sa.String),
        sa.column('procedure_key', sa.String),
    )
    update = (
        sa.update(tender)
        .where(tender.c.id == sa.bindparam('row_id'))
        .values(ref_key=sa.bindparam('new_ref_key'), procedure_key=sa.bindparam('new_procedure_key'))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(tender.c.id, tender.c.reference, tender.c.procedure_id)
            .where(
                tender.c.id > last,
                sa.or_(tender.c.reference.is_not(None), tender.c.procedure_id.is_not(None)),
            )
            .order_by(tender.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            update,
            [
                {
                    'row_id': row.id,
                    'new_ref_key': normalise_reference(row.reference),
                    'new_procedure_key': normalise_reference(row.procedure_id),
                }
                for row in rows
            ],
        )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('tender', schema=None) as batch_op:
        batch_op.drop_index('ix_tender_source_deadline')
        batch_op.drop_index(batch_op.f('ix_tender_ref_key'))
        batch_op.drop_index(batch_op.f('ix_tender_procedure_key'))
        batch_op.drop_column('procedure_key')
        batch_op.drop_column('ref_key')
