from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from app.api.deps import AdminUser, Session
from app.api.schemas import UserCreate, UserOut
from app.core.security import hash_password
from app.models import User

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserOut])
async def list_users(session: Session, _: AdminUser) -> list[User]:
    return list((await session.execute(select(User).order_by(User.created_at))).scalars())


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, session: Session, _: AdminUser) -> User:
    email = body.email.lower()
    if (await session.execute(select(User).where(User.email == email))).scalar_one_or_none():
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a user {email} already exists")
    user = User(email=email, hashed_password=hash_password(body.password), role=body.role)
    session.add(user)
    await session.commit()
    return user
