"""FastAPI dependencies: the database session, the current user, role checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import async_sessions
from app.core.security import InvalidTokenError, decode_access_token
from app.models import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with async_sessions()() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(session: Session, token: Annotated[str | None, Depends(oauth2)]) -> User:
    if not token:
        raise _unauthorized("not authenticated: send Authorization: Bearer <token> (POST /auth/token)")
    try:
        claims = decode_access_token(token)
        user_id = uuid.UUID(claims["sub"])
    except (InvalidTokenError, ValueError) as exc:
        raise _unauthorized(str(exc) if isinstance(exc, InvalidTokenError) else "the token is not valid") from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise _unauthorized("the account no longer exists or is disabled")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this needs the admin role")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
