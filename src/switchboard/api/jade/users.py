"""jade identity (login and logout are in auth.py): the caller's own record, users (admin and
manager views), permissions and users' contacts. One identity with every other dialect: a jade user is a row of the same
users table, shown by its uuid.

- Passwords are never returned: `password` shows "********" (the spec's examples echo the clear
  password; we keep only an argon2 hash). A PUT that sends "********" back leaves it unchanged.
- jade accepts any non-empty password (its own examples create users with 5-character ones);
  the other dialects keep their 8-character minimum.
- Permissions are the view of a user's role: "user" for everyone, "admin" for admin, master and
  super_master. A permission's uuid is derived from (user uuid, permission), so it is stable.
  Granting "admin" makes a plain user an admin; deleting an admin permission makes the user a
  plain user (the identity service's rank rules apply: nobody is raised above the caller, and
  the last super_master cannot lose it). The "user" permission cannot be removed.
- DELETE of a user cancels the account (tokens revoked; spear can still show it as cancelled).
"""

from __future__ import annotations

import uuid as uuidlib

from fastapi import Request

from switchboard.api.common import MASK, ctx, json_body
from switchboard.api.jade import envelope
from switchboard.api.jade.auth import permissions_of
from switchboard.api.jade.routing import doc, router
from switchboard.domain.entities import User
from switchboard.domain.errors import Conflict, Invalid, NotFound

JADE_MIN_PASSWORD = 1
PERMISSIONS = ("admin", "user")
_NS = uuidlib.UUID("6f1c2a4e-5b1d-4b7e-9f3a-0c2d8e7f6a51")

me_admin_api = router("users", me=True)
api = router("users")


def user_view(u: User, *, manager: bool = False) -> dict:
    d = {
        "name": u.name,
        "password": MASK,
        "tm_create": u.created_at,
        "tm_update": u.updated_at if u.updated_at != u.created_at else None,
        "username": u.username,
        "uuid": u.uuid,
    }
    if manager:
        d["context"] = u.context
        d["permissions"] = [{"permission": p} for p in permissions_of(u)]
    return d


def _user_fields(data: dict) -> dict:
    out = {k: data[k] for k in ("username", "name", "password", "context") if k in data}
    if out.get("password") == MASK:
        out.pop("password")
    return out


def _role_for(perms, current: str | None) -> str:
    if not isinstance(perms, list) or not all(
        isinstance(p, dict) and isinstance(p.get("permission"), str) for p in perms
    ):
        raise Invalid("permissions", 'must be a list like [{"permission": "user"}]')
    names = {p["permission"] for p in perms}
    unknown = names - set(PERMISSIONS)
    if unknown:
        raise Invalid("permissions", "unknown permission: " + ", ".join(sorted(unknown)))
    if "admin" in names:
        return current if current in ("admin", "master", "super_master") else "admin"
    return "user"


# ---- the caller ---------------------------------------------------------------------------------
@me_admin_api.get("/admin/info", summary="The caller's own user record")
async def info(request: Request):
    return envelope.respond(user_view(request.state.user))


@me_admin_api.put(
    "/admin/info", summary="Update the caller's own name, username or password", openapi_extra=doc("user_update")
)
async def info_update(request: Request):
    services, conn, user = ctx(request)
    data = _user_fields(await json_body(request))
    data.pop("context", None)
    await services.identity.update_user(conn, user, user.id, data, min_password=JADE_MIN_PASSWORD)
    return envelope.ok()


# ---- users (admin view) ------------------------------------------------------------------------
@api.get("/admin/user/users", summary="All users")
async def users_list(request: Request):
    services, conn, user = ctx(request)
    return envelope.listing([user_view(u) for u in await services.identity.list_users(conn, user)])


@api.post("/admin/user/users", summary="Create a user", openapi_extra=doc("user"))
async def users_create(request: Request):
    services, conn, user = ctx(request)
    await services.identity.create_user(
        conn, user, _user_fields(await json_body(request)), min_password=JADE_MIN_PASSWORD
    )
    return envelope.ok()


@api.get("/admin/user/users/{detail}", summary="One user by uuid")
async def users_show(request: Request, detail: str):
    services, conn, user = ctx(request)
    return envelope.respond(user_view(await services.identity.user_by_uuid(conn, user, detail)))


@api.put("/admin/user/users/{detail}", summary="Update a user", openapi_extra=doc("user_update"))
async def users_update(request: Request, detail: str):
    services, conn, user = ctx(request)
    target = await services.identity.user_by_uuid(conn, user, detail)
    await services.identity.update_user(
        conn, user, target.id, _user_fields(await json_body(request)), min_password=JADE_MIN_PASSWORD
    )
    return envelope.ok()


@api.delete("/admin/user/users/{detail}", summary="Delete (cancel) a user")
async def users_delete(request: Request, detail: str):
    services, conn, user = ctx(request)
    target = await services.identity.user_by_uuid(conn, user, detail)
    await services.identity.cancel_user(conn, user, target.id)
    return envelope.ok()


# ---- manager users: with context and permissions --------------------------------------------------
@api.get("/manager/users", summary="All users with context and permissions")
async def manager_list(request: Request):
    services, conn, user = ctx(request)
    return envelope.listing([user_view(u, manager=True) for u in await services.identity.list_users(conn, user)])


@api.post("/manager/users", summary="Create a user with context and permissions", openapi_extra=doc("manager_user"))
async def manager_create(request: Request):
    services, conn, user = ctx(request)
    data = await json_body(request)
    fields = _user_fields(data)
    if "permissions" in data:
        fields["role"] = _role_for(data["permissions"], None)
    await services.identity.create_user(conn, user, fields, min_password=JADE_MIN_PASSWORD)
    return envelope.ok()


@api.get("/manager/users/{detail}", summary="One user with context and permissions")
async def manager_show(request: Request, detail: str):
    services, conn, user = ctx(request)
    return envelope.respond(user_view(await services.identity.user_by_uuid(conn, user, detail), manager=True))


@api.put(
    "/manager/users/{detail}",
    summary="Update a user, its context and permissions",
    openapi_extra=doc("manager_user_update"),
)
async def manager_update(request: Request, detail: str):
    services, conn, user = ctx(request)
    target = await services.identity.user_by_uuid(conn, user, detail)
    data = await json_body(request)
    fields = _user_fields(data)
    if "permissions" in data:
        role = _role_for(data["permissions"], target.role)
        if role != target.role:
            fields["role"] = role
    await services.identity.update_user(conn, user, target.id, fields, min_password=JADE_MIN_PASSWORD)
    return envelope.ok()


@api.delete("/manager/users/{detail}", summary="Delete (cancel) a user")
async def manager_delete(request: Request, detail: str):
    return await users_delete(request, detail)


# ---- permissions -----------------------------------------------------------------------------------
def permission_uuid(user_uuid: str, permission: str) -> str:
    return str(uuidlib.uuid5(_NS, f"{user_uuid}:{permission}"))


def _permission_views(u: User) -> list[dict]:
    return [
        {
            "permission": p,
            "tm_create": u.created_at,
            "tm_update": None,
            "user_uuid": u.uuid,
            "uuid": permission_uuid(u.uuid, p),
        }
        for p in permissions_of(u)
    ]


async def _find_permission(request: Request, ident: str) -> tuple[User, dict]:
    services, conn, user = ctx(request)
    for u in await services.identity.list_users(conn, user):
        for p in _permission_views(u):
            if p["uuid"] == ident:
                return u, p
    raise NotFound("permission", ident)


@api.get("/admin/user/permissions", summary="Every user's permissions")
async def permissions_list(request: Request):
    services, conn, user = ctx(request)
    return envelope.listing([p for u in await services.identity.list_users(conn, user) for p in _permission_views(u)])


@api.post(
    "/admin/user/permissions", summary="Grant a permission: {user_uuid, permission}", openapi_extra=doc("permission")
)
async def permissions_create(request: Request):
    services, conn, user = ctx(request)
    data = await json_body(request)
    perm, user_uuid = data.get("permission"), data.get("user_uuid")
    if perm not in PERMISSIONS:
        raise Invalid("permission", "must be admin or user")
    if not isinstance(user_uuid, str):
        raise Invalid("user_uuid", "can't be blank")
    target = await services.identity.user_by_uuid(conn, user, user_uuid)
    if perm in permissions_of(target):
        raise Conflict("permission", "is already held by this user")
    await services.identity.update_user(conn, user, target.id, {"role": "admin"})
    return envelope.ok()


@api.get("/admin/user/permissions/{detail}", summary="One permission")
async def permissions_show(request: Request, detail: str):
    _, p = await _find_permission(request, detail)
    return envelope.respond(p)


@api.delete("/admin/user/permissions/{detail}", summary="Revoke a permission")
async def permissions_delete(request: Request, detail: str):
    services, conn, user = ctx(request)
    target, p = await _find_permission(request, detail)
    if p["permission"] == "user":
        raise Invalid("permission", "every user holds the user permission; delete the user instead")
    await services.identity.update_user(conn, user, target.id, {"role": "user"})
    return envelope.ok()


# ---- users' contacts --------------------------------------------------------------------------------
def contact_view(request: Request, c: dict) -> dict:
    services = request.app.state.services
    host, _ = services.settings.sip_host_port
    info = None
    cfg = services.pbx.pjsip()
    if c["type"] == "pjsip_endpoint":
        realm = "localhost"
        has_secret = False
        if cfg is not None and c["target"] in cfg.endpoints:
            auth_name = cfg.endpoints[c["target"]].get("auth", "").split(",")[0].strip()
            if auth_name in cfg.auths:
                realm = cfg.auths[auth_name].get("realm") or realm
                has_secret = bool(cfg.auths[auth_name].get("password") or cfg.auths[auth_name].get("md5_cred"))
        info = {
            "id": c["target"],
            "password": MASK if has_secret else "",
            "public_url": f"sip:{c['target']}@{host}",
            "realm": realm,
        }
    return {
        "detail": c["detail"],
        "info": info,
        "name": c["name"],
        "target": c["target"],
        "tm_create": c["created_at"],
        "tm_update": c["updated_at"],
        "type": c["type"],
        "user_uuid": c["user_uuid"],
        "uuid": c["uuid"],
    }


@api.get("/admin/user/contacts", summary="Every user's contacts")
async def contacts_list(request: Request):
    services, conn, _ = ctx(request)
    return envelope.listing([contact_view(request, c) for c in await services.contacts.list(conn)])


@api.post(
    "/admin/user/contacts",
    summary="Create a contact: {user_uuid, type, target, name, detail}",
    openapi_extra=doc("contact"),
)
async def contacts_create(request: Request):
    services, conn, _ = ctx(request)
    await services.contacts.create(conn, await json_body(request))
    return envelope.ok()


@api.get("/admin/user/contacts/{detail}", summary="One contact")
async def contacts_show(request: Request, detail: str):
    services, conn, _ = ctx(request)
    return envelope.respond(contact_view(request, await services.contacts.get(conn, detail)))


@api.put("/admin/user/contacts/{detail}", summary="Update a contact", openapi_extra=doc("contact_update"))
async def contacts_update(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.contacts.update(conn, detail, await json_body(request))
    return envelope.ok()


@api.delete("/admin/user/contacts/{detail}", summary="Delete a contact")
async def contacts_delete(request: Request, detail: str):
    services, conn, _ = ctx(request)
    await services.contacts.delete(conn, detail)
    return envelope.ok()
