"""FastAPI dependencies: the database session, the current user, role checks; rows found or 404."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import async_sessions
from app.core.errors import NotFound
from app.core.security import InvalidTokenError, decode_access_token
from app.models import Article, User
from app.services import preview_token

T = TypeVar("T")

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


async def get_or_404(session: AsyncSession, model: type[T], row_id: uuid.UUID, what: str) -> T:
    """The row, or a 404 that says what is missing ("no article <id>")."""
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


async def previewed_article(session: AsyncSession, article_id: uuid.UUID, token: str) -> Article:
    """The article a preview link shows (no login: the link's token is checked instead)."""
    if not hmac.compare_digest(token.encode(), preview_token(article_id).encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid preview link")
    article = await session.get(Article, article_id)
    if article is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such article")
    return article
