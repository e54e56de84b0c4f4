"""Identity service on a real (temporary SQLite) database: roles, tokens, Basic cache, rate limit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from switchboard.domain.errors import Conflict, Forbidden, Invalid, RateLimited, Unauthenticated
from switchboard.domain.identity import IdentityService
from switchboard.domain.security import SecretBox
from switchboard.store.db import Database


@pytest.fixture
async def env(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/t.db")
    await db.migrate()
    ids = IdentityService(SecretBox(SecretBox.generate_key()), cache_seconds=60, failures_per_minute=3)
    async with db.transaction() as conn:
        await ids.ensure_bootstrap_admin(conn, "root", "root-password")
    yield db, ids
    await db.close()


async def test_bootstrap_generates_a_password_once_and_migrate_says_what_it_did(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/b.db")
    assert (await db.migrate()).startswith("schema created (revision ")
    assert (await db.migrate()).startswith("schema up to date (revision ")
    ids = IdentityService(SecretBox(SecretBox.generate_key()))
    async with db.transaction() as conn:
        created, pw = await ids.ensure_bootstrap_admin(conn, "admin", None)
        assert created and pw and await ids.ensure_bootstrap_admin(conn, "admin", None) == (False, None)
        assert await ids.ensure_bootstrap_admin(conn, "other", "given-password-1") == (True, None)
        u = await ids.authenticate_password(conn, "admin", pw)
        assert u.role == "super_master" and u.password_hash != pw
    await db.close()


async def test_tokens_issue_resolve_revoke_expire(env):
    db, ids = env
    async with db.transaction() as conn:
        root = await ids.authenticate_password(conn, "root", "root-password")
        token, _ = await ids.issue_token(conn, root, issued_by="test")
        assert (await ids.authenticate_token(conn, token)).id == root.id
        expired, _ = await ids.issue_token(conn, root, issued_by="test", ttl=timedelta(seconds=-1))
        with pytest.raises(Unauthenticated):
            await ids.authenticate_token(conn, expired)
        assert await ids.revoke_token(conn, token)
        with pytest.raises(Unauthenticated):
            await ids.authenticate_token(conn, token)
        with pytest.raises(Unauthenticated):
            await ids.authenticate_token(conn, "made-up")


async def test_password_change_and_cancel_invalidate_cache_and_tokens(env):
    db, ids = env
    async with db.transaction() as conn:
        root = await ids.authenticate_password(conn, "root", "root-password")
        u = await ids.create_user(conn, root, {"username": "Carol", "password": "carol-pass-1"})
        assert (await ids.authenticate_password(conn, "carol", "carol-pass-1")).id == u.id  # any case
        assert len(ids._cache) == 2
        token, _ = await ids.issue_token(conn, u, issued_by="test")
        await ids.update_user(conn, u, u.id, {"password": "carol-pass-2"})
        with pytest.raises(Unauthenticated):  # cached entry no longer trusted
            await ids.authenticate_password(conn, "carol", "carol-pass-1")
        with pytest.raises(Unauthenticated):  # tokens revoked with the password change
            await ids.authenticate_token(conn, token)
        await ids.authenticate_password(conn, "carol", "carol-pass-2")
        await ids.cancel_user(conn, root, u.id)
        with pytest.raises(Unauthenticated):
            await ids.authenticate_password(conn, "carol", "carol-pass-2")


async def test_failures_are_rate_limited_per_source(env):
    db, ids = env
    async with db.transaction() as conn:
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                await ids.authenticate_password(conn, "root", "nope", "198.51.100.9")
        with pytest.raises(RateLimited):
            await ids.authenticate_password(conn, "root", "root-password", "198.51.100.9")
        # another source is unaffected
        assert await ids.authenticate_password(conn, "root", "root-password", "198.51.100.10")


async def test_role_rules(env):
    db, ids = env
    async with db.transaction() as conn:
        root = await ids.authenticate_password(conn, "root", "root-password")
        adm = await ids.create_user(conn, root, {"username": "adm", "password": "adm-pass-1", "role": "admin"})
        with pytest.raises(Forbidden):
            await ids.create_user(conn, adm, {"username": "x", "password": "xxxxxxxx", "role": "super_master"})
        with pytest.raises(Forbidden):
            await ids.update_user(conn, adm, root.id, {"name": "x"})
        with pytest.raises(Invalid):  # the last super master keeps the role
            await ids.update_user(conn, root, root.id, {"role": "admin"})
        with pytest.raises(Conflict):
            await ids.create_user(conn, root, {"username": "ADM", "password": "adm-pass-2"})
        with pytest.raises(Invalid) as e:
            await ids.create_user(conn, root, {"username": " ", "password": "short"})
        assert {f for f, _ in e.value.problems} == {"username", "password"}
