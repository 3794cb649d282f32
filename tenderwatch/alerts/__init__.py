"""Alerting: matching events to subscription profiles, the outbox, and delivery through apprise."""
