"""Accounts for the CLI and the web: create users, check passwords with lockout, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from tenderwatch.dates import now_utc
from tenderwatch.storage.accounts import ApiToken, Role, User, UserCluster
from tenderwatch.storage.subscriptions import Cluster

MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
#: verified against when the e-mail is unknown, so timing does not reveal which accounts exist
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


class AccountError(ValueError):
    """Bad input for an account operation; the message is safe to show."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session, email: str, password: str, role: str, clusters: list[str] | None = None
) -> User:
    """A new user; managers need at least one cluster, which is created when it does not exist yet."""
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError(f"not an e-mail address: {email!r}")
    try:
        role = Role(role).value
    except ValueError:
        raise AccountError(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}") from None
    clusters = [name.strip() for name in clusters or [] if name.strip()]
    if role == Role.MANAGER and not clusters:
        raise AccountError("a manager needs at least one --cluster")
    if role != Role.MANAGER and clusters:
        raise AccountError("only managers are bound to clusters")
    if session.exec(select(User).where(User.email == email)).first():
        raise AccountError(f"a user {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    assert user.id is not None
    for name in clusters:
        cluster = session.exec(select(Cluster).where(Cluster.name == name)).first()
        if cluster is None:
            cluster = Cluster(name=name)
            session.add(cluster)
            session.flush()
        assert cluster.id is not None
        session.add(UserCluster(user_id=user.id, cluster_id=cluster.id))
    session.flush()
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """A new password; unlocks the account and ends every existing session of the user."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise AccountError(f"no user {email.strip().lower()}")
    user.password_hash = hash_password(password)
    user.session_version += 1
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    session.flush()
    return user


@dataclass
class LoginResult:
    user: User | None
    error: str | None = None


def authenticate(session: Session, email: str, password: str) -> LoginResult:
    """Check a password; after ``MAX_FAILED_LOGINS`` failures in a row the account locks for ``LOCKOUT``."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    generic = "wrong e-mail or password"
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return LoginResult(None, generic)
    now = now_utc()
    if user.locked_until and user.locked_until > now:
        return LoginResult(None, "too many failed logins; this account is locked for a while")
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        session.add(user)
        return LoginResult(None, generic)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.add(user)
    return LoginResult(user)


def cluster_ids_of(session: Session, user: User) -> frozenset[int]:
    rows = session.exec(select(UserCluster.cluster_id).where(UserCluster.user_id == user.id))
    return frozenset(rows)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(session: Session, user_id: int, name: str) -> str:
    """A new token, shown once; only its hash is stored."""
    token = "tw_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name.strip()[:128] or "token", token_hash=_digest(token)))
    session.flush()
    return token


def user_for_api_token(session: Session, token: str) -> User | None:
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == _digest(token), col(ApiToken.revoked_at).is_(None))
    ).first()
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_used_at = now_utc()
    session.add(row)
    return user
