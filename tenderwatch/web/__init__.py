"""The web admin: tenders, subscriptions, alerts and operations for cluster managers and operators.

``create_app()`` in :mod:`tenderwatch.web.app` builds the FastAPI application; ``tenderwatch web`` serves it.
"""
