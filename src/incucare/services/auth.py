"""Logging in: argon2 password hashes, signed bearer tokens for the API, the Actor behind a user."""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import User
from incucare.domain.errors import ValidationFailed
from incucare.domain.model import Role
from incucare.services.context import Actor

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")
MIN_PASSWORD_LENGTH = 4


class AuthenticationFailed(Exception):
    """Wrong user name or password, or a disabled account (one message for all: no user enumeration)."""


def hash_password(password: str) -> str:
    """An argon2id hash with the library's current parameters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            zh=f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")
    return _hasher.hash(password)


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with this name and password; AuthenticationFailed otherwise."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        raise AuthenticationFailed("wrong user name or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise AuthenticationFailed("wrong user name or password") from exc
    if not user.active:
        raise AuthenticationFailed("wrong user name or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def actor_for(user: User) -> Actor:
    """The Actor (role and tenant scope) a logged-in user acts as."""
    return Actor(
        user_id=user.id,
        name=user.full_name or user.username,
        role=Role(user.role),
        region_id=user.region_id,
        customer_id=user.customer_id,
        service_point_id=user.service_point_id,
        language=user.language,
    )


class TokenSigner:
    """Stateless signed bearer tokens, so any app process behind a load balancer can check them."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="incucare-api-token")
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User) -> str:
        """A token naming the user and the hash generation, so a password change revokes old tokens."""
        return self._serializer.dumps({"uid": user.id, "pw": user.password_hash[-12:]})

    def user_for(self, session: Session, token: str) -> User | None:
        """The active user behind a valid, unexpired token; None for anything else."""
        try:
            data = self._serializer.loads(token, max_age=self.ttl_seconds)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        user = session.get(User, data.get("uid"))
        if user is None or not user.active or user.password_hash[-12:] != data.get("pw"):
            return None
        return user
