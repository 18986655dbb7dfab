"""User accounts: created by administrators (or the CLI), passwords hashed with argon2."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from incucare.adapters.db.tables import Customer, Region, ServicePoint, User
from incucare.domain.errors import Conflict, PermissionDenied, ValidationFailed
from incucare.domain.model import Role
from incucare.services.audit import record_change
from incucare.services.auth import hash_password
from incucare.services.context import Actor
from incucare.services.paging import Page, paginate


def create_user(session: Session, actor: Actor, *, now: datetime, username: str, password: str, role: Role,
                full_name: str, customer_id: int | None = None, region_id: int | None = None,
                service_point_id: int | None = None, email: str = "", phone: str = "",
                language: str = "zh") -> User:
    """Create an account; customers need their organisation, partners their region."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("only an administrator may create users", zh="只有系统管理员可以创建用户")
    username = username.strip()
    if not username:
        raise ValidationFailed("username must not be empty", zh="用户名不能为空")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user '{username}' already exists", zh=f"用户 '{username}' 已存在")
    if role is Role.CUSTOMER and (customer_id is None or session.get(Customer, customer_id) is None):
        raise ValidationFailed("a customer user needs an existing customer_id",
            zh="客户账号必须关联一个已存在的客户(customer_id)")
    if role is Role.PARTNER and (region_id is None or session.get(Region, region_id) is None):
        raise ValidationFailed("a partner user needs an existing region_id",
            zh="经销商账号必须关联一个已存在的区域(region_id)")
    if service_point_id is not None and session.get(ServicePoint, service_point_id) is None:
        raise ValidationFailed(f"service point {service_point_id} does not exist",
            zh=f"服务网点 {service_point_id} 不存在")
    user = User(username=username, password_hash=hash_password(password), full_name=full_name, role=role.value,
                customer_id=customer_id, region_id=region_id, service_point_id=service_point_id, email=email,
                phone=phone, language=language, created_at=now)
    session.add(user)
    session.flush()
    record_change(session, actor, at=now, entity="user", entity_id=user.id, action="create",
                  changes={"username": (None, username), "role": (None, role.value)})
    return user


def list_users(session: Session, actor: Actor, *, role: Role | None = None, active: bool | None = True,
               q: str | None = None, limit: int = 50, offset: int = 0) -> Page[User]:
    """Staff directory (for hand-overs and dispatch); customers and partners may not browse it."""
    if not actor.is_staff:
        raise PermissionDenied("only service staff may list users", zh="只有服务人员可以查看用户列表")
    query = select(User)
    if role is not None:
        query = query.where(User.role == role.value)
    if active is not None:
        query = query.where(User.active.is_(active))
    if q:
        like = f"%{q.strip()}%"
        query = query.where(or_(User.username.ilike(like), User.full_name.ilike(like)))
    return paginate(session, query.order_by(User.role, User.username), limit=limit, offset=offset)
