from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from app.api.deps import CurrentUser, Session
from app.api.schemas import Token, UserOut
from app.core.config import get_settings
from app.core.security import create_access_token, hash_password, verify_password
from app.models import User

router = APIRouter(tags=["auth"])
# Verifying against a real hash when the user is unknown keeps the timing the same either way.
_DUMMY_HASH = hash_password("copydesk-timing-equaliser")


@router.post("/auth/token", response_model=Token)
async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: Session) -> Token:
    """Exchange an e-mail and password for a bearer token (OAuth2 password form)."""
    user = (await session.execute(select(User).where(User.email == form.username.lower()))).scalar_one_or_none()
    valid = verify_password(form.password, user.hashed_password if user else _DUMMY_HASH)
    if user is None or not valid or not user.is_active:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong e-mail or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    minutes = get_settings().jwt_expire_minutes
    return Token(access_token=create_access_token(str(user.id), user.role), expires_in=minutes * 60)


@router.get("/users/me", response_model=UserOut, tags=["users"])
async def me(user: CurrentUser) -> User:
    return user
