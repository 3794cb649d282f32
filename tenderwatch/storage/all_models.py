"""Imports every table module so that ``SQLModel.metadata`` is complete (Alembic, tests, create_all).

Each capability that adds tables adds its module here.
"""

from tenderwatch.storage import accounts, calls, feeds, models, outbox, subscriptions  # noqa: F401
