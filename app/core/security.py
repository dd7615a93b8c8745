"""JWT access tokens (python-jose, HS256), password hashing (passlib + bcrypt), secrets at rest (Fernet)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from cryptography.fernet import Fernet, InvalidToken
from jose import ExpiredSignatureError, JWTError, jwt
from passlib.context import CryptContext

from app.core.config import get_settings
from app.core.errors import ConfigurationError

ALGORITHM = "HS256"
_passwords = CryptContext(schemes=["bcrypt"], deprecated="auto")


class InvalidTokenError(Exception):
    """The token is missing, malformed, tampered with, signed with another key, or expired."""


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _passwords.verify(password, hashed)
    except ValueError:
        return False


def create_access_token(subject: str, role: str, *, expires_minutes: int | None = None) -> str:
    settings = get_settings()
    now = datetime.now(timezone.utc)
    expires = now + timedelta(minutes=expires_minutes or settings.jwt_expire_minutes)
    claims = {"sub": subject, "role": role, "iat": now, "exp": expires, "typ": "access"}
    return jwt.encode(claims, settings.jwt_secret(), algorithm=ALGORITHM)


def decode_access_token(token: str) -> dict:
    """The token's claims; InvalidTokenError for anything but a valid, unexpired HS256 access token."""
    try:
        # algorithms pinned: a token claiming "none" or another algorithm is refused.
        claims = jwt.decode(token, get_settings().jwt_secret(), algorithms=[ALGORITHM])
    except ExpiredSignatureError:
        raise InvalidTokenError("the token has expired; log in again") from None
    except JWTError:
        raise InvalidTokenError("the token is not valid") from None
    if claims.get("typ") != "access" or not claims.get("sub"):
        raise InvalidTokenError("the token is not an access token")
    return claims


@functools.lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigurationError(
            "ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded bytes; "
            'make one with `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
        ) from None


def encrypt_secret(value: str) -> str:
    return _fernet(get_settings().fernet_key()).encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(get_settings().fernet_key()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ConfigurationError(
            "a stored password cannot be decrypted: ENCRYPTION_KEY changed since it was saved; set it again"
        ) from None
