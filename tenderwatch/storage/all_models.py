"""Imports every table module so that ``SQLModel.metadata`` is complete (Alembic, tests, create_all).

Each capability that adds tables adds its module here.
"""

from tenderwatch.storage import (  # noqa: F401
    accounts,
    alert_state,
    calls,
    feeds,
    models,
    outbox,
    service,
    subscriptions,
)
