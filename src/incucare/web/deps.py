"""Request-scoped dependencies: the unit of work, the clock and the authenticated actor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from incucare.adapters.db.uow import UnitOfWork
from incucare.services.auth import actor_for
from incucare.services.context import Actor
from incucare.web.errors import NotAuthenticated

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    """One unit of work per request; routes call ``uow.commit()`` only when all went well."""
    with UnitOfWork(request.app.state.session_factory) as uow:
        yield uow


def get_now(request: Request) -> datetime:
    """The current time from the app's injectable clock."""
    now: datetime = request.app.state.clock()
    return now


def api_actor(
    request: Request,
    uow: Annotated[UnitOfWork, Depends(get_uow)],
    token: Annotated[str | None, Depends(oauth2)],
) -> Actor:
    """The caller behind the bearer token; the API never trusts cookies (no CSRF surface)."""
    if not token:
        raise NotAuthenticated("authentication required: send 'Authorization: Bearer <token>'")
    user = request.app.state.tokens.user_for(uow.session, token)
    if user is None:
        raise NotAuthenticated("invalid or expired token")
    return actor_for(user)


UowDep = Annotated[UnitOfWork, Depends(get_uow)]
NowDep = Annotated[datetime, Depends(get_now)]
ActorDep = Annotated[Actor, Depends(api_actor)]
