"""Signed, expiring tokens for links in alerts (unsubscribe, relevance feedback, per-profile feeds).

Links carry no database ids in clear and cannot be forged without ``TENDERWATCH_SECRET_KEY``. The web admin
serves them under ``/unsubscribe/{token}``, ``/feedback/{token}/relevant|not-relevant`` and
``/profiles/feed/{token}.rss|.ics``; :func:`link` builds absolute URLs from ``TENDERWATCH_PUBLIC_URL``.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from tenderwatch.config import get_settings


class BadTokenError(ValueError):
    """The token is forged, for another purpose, or expired; the message is safe to show."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    secret = get_settings().secret_key.get_secret_value()
    return URLSafeTimedSerializer(secret, salt=f"tenderwatch.{purpose}")


def sign(purpose: str, data: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(data)


def unsign(purpose: str, token: str, *, max_age: int | None = None) -> dict[str, Any]:
    """The data signed for ``purpose``; ``max_age`` in seconds (None: never expires)."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise BadTokenError("this link has expired") from exc
    except BadSignature as exc:
        raise BadTokenError("this link is not valid") from exc
    if not isinstance(data, dict):
        raise BadTokenError("this link is not valid")
    return data


def link(path: str) -> str:
    """Absolute URL on the public web admin."""
    return get_settings().public_url.rstrip("/") + "/" + path.lstrip("/")
