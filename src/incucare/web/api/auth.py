"""Token issue and "who am I"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from incucare.adapters.db.tables import User
from incucare.services.auth import AuthenticationFailed, authenticate
from incucare.web.api.schemas import MeOut, TokenOut
from incucare.web.deps import ActorDep, UowDep
from incucare.web.errors import NotAuthenticated

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut)
def issue_token(request: Request, uow: UowDep,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    """OAuth2 password flow: user name and password in, bearer token out."""
    try:
        user = authenticate(uow.session, form.username, form.password)
    except AuthenticationFailed as exc:
        raise NotAuthenticated(str(exc)) from exc
    uow.commit()
    signer = request.app.state.tokens
    return TokenOut(access_token=signer.issue(user), expires_in=signer.ttl_seconds)


@router.get("/me", response_model=MeOut)
def me(actor: ActorDep, uow: UowDep) -> MeOut:
    """The authenticated user, their role and tenant."""
    user = uow.session.get(User, actor.user_id)
    assert user is not None
    return MeOut(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                 region_id=user.region_id, customer_id=user.customer_id,
                 service_point_id=user.service_point_id, language=user.language)
