"""domain/cluster.py: the secret key check and the leases, on SQLite and a fresh PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.domain import cluster
from switchboard.domain.security import SecretBox


async def test_the_first_key_is_the_clusters_and_another_is_refused(migrated_db):
    mine, other = SecretBox(SecretBox.generate_key()), SecretBox(SecretBox.generate_key())
    await cluster.check_secret_key(migrated_db, mine)
    await cluster.check_secret_key(migrated_db, mine)  # the same key again: fine
    with pytest.raises(cluster.KeyMismatch, match="secret key"):
        await cluster.check_secret_key(migrated_db, other)


async def test_a_lease_is_held_by_one_node_and_moves_when_it_expires_or_is_released(migrated_db):
    a = cluster.Leases(migrated_db, ttl=1.0, node="node-a")
    b = cluster.Leases(migrated_db, ttl=1.0, node="node-b")
    assert await a.acquire("job")
    if migrated_db.is_sqlite:  # one node: always held
        assert await b.acquire("job")
        return
    assert not await b.acquire("job")
    assert await a.acquire("job")  # renewal
    assert (await a.holders())["job"] == "node-a"
    await asyncio.sleep(1.2)  # a stopped renewing: expired
    assert await b.acquire("job")
    assert not await a.acquire("job")
    await b.release("job")
    assert await a.acquire("job")


async def test_run_keeps_one_job_running_in_the_cluster_and_hands_it_over(migrated_db):
    if migrated_db.is_sqlite:
        pytest.skip("one node on SQLite")
    running: list[str] = []

    def job(name):
        async def run():
            running.append(name)
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(name)

        return run

    a = cluster.Leases(migrated_db, ttl=1.0, node="node-a")
    b = cluster.Leases(migrated_db, ttl=1.0, node="node-b")
    a.run("work", job("a"))
    await asyncio.sleep(0.3)
    b.run("work", job("b"))
    await asyncio.sleep(1.5)
    assert running == ["a"]
    await a.stop()  # a clean stop gives the lease back: b takes it at its next attempt
    await asyncio.sleep(0.6)
    assert running == ["b"]
    await b.stop()
    assert running == []
