"""User directory and account creation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from incucare.domain.model import Role
from incucare.services import users as svc
from incucare.web.api.schemas import PageOut, Strict, page_of
from incucare.web.deps import ActorDep, NowDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["users"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: Role
    email: str
    phone: str
    active: bool
    region_id: int | None
    customer_id: int | None
    service_point_id: int | None
    skills: list[str]


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=256)
    full_name: str = Field(min_length=1, max_length=128)
    role: Role
    email: str = Field(default="", max_length=255)
    phone: str = Field(default="", max_length=32)
    language: str = Field(default="zh", pattern="^(zh|en)$")
    region_id: int | None = None
    customer_id: int | None = None
    service_point_id: int | None = None


@router.get("/users", response_model=PageOut[UserOut])
def list_users(actor: ActorDep, uow: UowDep, role: Role | None = None, active: bool | None = True,
               q: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Staff directory, for hand-overs and dispatch (staff only)."""
    page = svc.list_users(uow.session, actor, role=role, active=active, q=q, limit=limit, offset=offset)
    return page_of(page, UserOut.model_validate)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, actor: ActorDep, uow: UowDep, now: NowDep) -> UserOut:
    """Create an account (administrators only); the password is stored as an argon2 hash."""
    user = svc.create_user(uow.session, actor, now=now, **body.model_dump())
    uow.commit()
    return UserOut.model_validate(user)
