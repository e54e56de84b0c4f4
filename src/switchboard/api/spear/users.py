"""Spear users: /users[/{id}[/activate]]. Category 'Admin' is any administrative role (admin,
master, super_master), 'Normal' the user role; `master` is true for the super_master."""

from __future__ import annotations

from fastapi import Request

from switchboard.api.common import ctx
from switchboard.api.spear import schemas as sc
from switchboard.api.spear.envelope import render, render_list
from switchboard.api.spear.routing import body_of, each, location, router, status_of, user_id_of
from switchboard.domain.entities import ADMIN_ROLES, User
from switchboard.domain.errors import Forbidden, Invalid
from switchboard.domain.webhooks import clean_webhook_url, set_webhook_url

api = router("users")

CATEGORY_ROLES = {"admin": tuple(sorted(ADMIN_ROLES)), "normal": ("user",)}


def fields(u: User):
    return (
        ("id", u.id),
        ("username", u.username),
        ("name", u.name),
        ("master", u.is_super),
        ("email", u.email),
        ("category", "Admin" if u.is_admin else "Normal"),
        ("time_zone", u.time_zone),
        ("webhook_url", u.webhook_url),
        ("created_at", u.created_at),
        ("deleted_at", u.deleted_at),
    )


def to_domain(data: dict, current: User | None = None) -> dict:
    """Spear's category -> domain role. 'Admin' keeps a master's or super_master's own role."""
    data = {k: v for k, v in data.items() if k not in ("role", "master")}
    if "category" in data:
        cat = str(data.pop("category") or "").strip().lower()
        if cat not in CATEGORY_ROLES:
            raise Invalid("category", "must be 'Admin' or 'Normal'")
        if cat == "admin" and current is not None and current.is_admin:
            pass
        else:
            data["role"] = "admin" if cat == "admin" else "user"
    return data


@api.get("/users", responses=sc.responses(sc.collection(sc.UserOut), 422))
async def list_users(
    request: Request,
    name: str | None = None,
    email: str | None = None,
    username: str | None = None,
    category: str | None = None,
    deleted: str | None = None,
    status: str | None = None,
):
    """Admins see every user; a normal user sees only their own account."""
    svc, conn, actor = ctx(request)
    roles = None
    if category is not None:
        roles = CATEGORY_ROLES.get(category.strip().lower())
        if roles is None:
            raise Invalid("category", "must be 'Admin' or 'Normal'")
    users = await svc.identity.list_users(
        conn, actor, name=name, email=email, username=username, roles=roles, status=status_of(status, deleted)
    )
    return render_list(request, "users", "user", [fields(u) for u in users])


@api.get("/users/{user_id}", responses=sc.responses(sc.UserOut, 403, 404))
async def show_user(request: Request, user_id: str):
    svc, conn, actor = ctx(request)
    return render(request, "user", fields(await svc.identity.get_user(conn, actor, user_id_of(request, user_id))))


@api.post(
    "/users",
    status_code=201,
    responses=sc.responses(sc.UserOut, 400, 403, 422),
    openapi_extra=sc.body("user", sc.USER_IN, required=["username", "password"]),
)
async def create_user(request: Request):
    """Admins only. Password: at least 8 characters; stored as an argon2 hash, never shown."""
    svc, conn, actor = ctx(request)
    if not actor.is_admin:
        raise Forbidden("only administrators create users")
    data = await body_of(request, "user")
    webhook = clean_webhook_url(data.pop("webhook_url", None))
    user = await svc.identity.create_user(conn, actor, to_domain(data))
    if webhook is not None:
        user = await set_webhook_url(conn, user, webhook)
    return render(request, "user", fields(user), 201, location(request, f"/users/{user.id}"))


@each(
    api,
    ("PUT", "PATCH"),
    "/users/{user_id}",
    responses=sc.responses(sc.UserOut, 400, 403, 404, 422),
    openapi_extra=sc.body("user", sc.USER_IN),
)
async def update_user(request: Request, user_id: str):
    """A user may change their own name, email, username, password and time zone; admins may
    also change category. PATCH is accepted as well (VoIP Spear v3 uses it). `webhook_url`: an
    http(s) URL where alert events are POSTed; null or "" removes it."""
    svc, conn, actor = ctx(request)
    uid = user_id_of(request, user_id)
    current = await svc.identity.get_user(conn, actor, uid)
    body = await body_of(request, "user")
    has_webhook = "webhook_url" in body
    webhook = clean_webhook_url(body.pop("webhook_url", None))
    user = await svc.identity.update_user(conn, actor, uid, to_domain(body, current))
    if has_webhook:
        user = await set_webhook_url(conn, user, webhook)
    return render(request, "user", fields(user))


@api.delete("/users/{user_id}", responses=sc.responses(sc.UserOut, 403, 404))
async def cancel_user(request: Request, user_id: str):
    """Cancels (deleted_at set, tokens revoked, login refused); nothing is removed."""
    svc, conn, actor = ctx(request)
    return render(request, "user", fields(await svc.identity.cancel_user(conn, actor, user_id_of(request, user_id))))


@each(api, ("PUT", "PATCH"), "/users/{user_id}/activate", responses=sc.responses(sc.UserOut, 403, 404))
async def activate_user(request: Request, user_id: str):
    svc, conn, actor = ctx(request)
    return render(request, "user", fields(await svc.identity.activate_user(conn, actor, user_id_of(request, user_id))))
