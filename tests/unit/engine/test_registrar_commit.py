"""The registrar's durable binding, driven in-process on a real database (temporary SQLite, and
PostgreSQL where it answers): a REGISTER is answered only once its binding is committed, in groups
(one transaction for the REGISTERs decided together), REGISTERs of one aor one after the other, and a
failed commit answers every REGISTER of its group with an error and acknowledges none."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text

from switchboard.domain import pbxconf
from switchboard.domain.throttle import FailureThrottle, Limits
from switchboard.engine.registrar import Registrar
from switchboard.engine.runtime import Loaded, Pbx
from switchboard.sip.digest import DigestClient, DigestServer, parse_params
from switchboard.sip.engine import Deferred, Source
from switchboard.sip.message import Message, parse
from switchboard.sip.steer import aor_owner
from switchboard.store import tables as t
from tests.sip_peers import pjsip_account

USERS = [f"u{i:03d}" for i in range(40)]
SOURCE = Source("192.0.2.7", 5062, "UDP")


@pytest.fixture
async def reg(migrated_db):
    pbx = Pbx()
    text = "".join(pjsip_account(u, None, max_contacts=2) for u in USERS)  # no auth: REGISTERs bind at once
    text += pjsip_account("alice", "alice-secret", max_contacts=1, remove_existing="yes")
    pbx.config["pjsip"] = Loaded(pbxconf.validate_text("pjsip", text), time.time_ns())
    return Registrar(pbx, migrated_db, b"k" * 32, throttle=FailureThrottle(Limits(per_pair=1000)))


def register(user: str, n: int = 1, *, port: int = 5062, expires: int = 600, auth: str | None = None) -> Message:
    lines = [
        "REGISTER sip:registrar.test SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.7:{port};branch=z9hG4bK{user}x{n}x{port};rport",
        f"From: <sip:{user}@registrar.test>;tag=t{n}",
        f"To: <sip:{user}@registrar.test>",
        f"Call-ID: call-{user}-{port}",
        f"CSeq: {n} REGISTER",
        f"Contact: <sip:{user}@192.0.2.7:{port}>",
        f"Expires: {expires}",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return parse(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


async def stored(registrar: Registrar) -> dict[str, list[str]]:
    c = t.sip_contacts.c
    async with registrar.db.transaction(write=False) as conn:
        rows = (await conn.execute(select(c.aor, c.uri))).all()
    out: dict[str, list[str]] = {}
    for aor, uri in rows:
        out.setdefault(aor, []).append(uri)
    return out


async def until_done(*answers) -> None:
    """Until every Deferred among `answers` is settled (on PostgreSQL a commit takes round trips)."""
    deadline = time.monotonic() + 10
    while not all(not isinstance(a, Deferred) or a.done for a in answers):
        assert time.monotonic() < deadline, "a REGISTER was never answered"
        await asyncio.sleep(0.002)


async def settle(*answers) -> list[Message]:
    """The responses, once every Deferred among `answers` is settled."""
    await until_done(*answers)
    out = []
    for a in answers:
        if isinstance(a, Deferred):
            got: list = []
            a.then(lambda resp, exc, got=got: got.append((resp, exc)))
            resp, exc = got[0]
            if exc is not None:
                raise exc
            a = resp
        out.append(a)
    return out


async def test_a_register_is_answered_after_its_binding_is_committed(reg):
    write, seen = reg.write, []

    async def watched(db, batch):  # what the answer looked like while its commit was being written
        seen.append(answer.done)
        await write(db, batch)

    reg.write = watched
    answer = reg.handle(register("u000"), SOURCE)
    assert isinstance(answer, Deferred) and not answer.done  # nothing answered before the commit
    [ok] = await settle(answer)
    assert seen == [False]
    assert ok.status == 200 and ok.get("Contact") == "<sip:u000@192.0.2.7:5062>;expires=600"
    assert await stored(reg) == {"u000": ["sip:u000@192.0.2.7:5062"]}
    assert list(reg.pbx.contacts["u000"]) == ["sip:u000@192.0.2.7:5062"]


async def test_a_burst_is_committed_in_groups_sqlite_eagerly(reg):
    n = reg.eager_batch * 2 + 1
    answers = [reg.handle(register(u), SOURCE) for u in USERS[:n]]
    if reg.db.is_sqlite:  # each full group was committed and answered within the REGISTER that filled it
        done = [a.done for a in answers]
        assert done == [True] * (2 * reg.eager_batch) + [False]
        assert len(await stored(reg)) == 2 * reg.eager_batch
    else:  # PostgreSQL: one commit after the burst, by the flusher task
        assert not any(a.done for a in answers)
    responses = await settle(*answers)
    assert [r.status for r in responses] == [200] * n
    assert sorted(await stored(reg)) == sorted(USERS[:n])


async def test_a_stateless_challenge_is_signed_with_the_key_of_the_aors_owner(reg):
    """SIP workers: the process a REGISTER without credentials reaches challenges it (SipEngine.challenge)
    with a nonce of the aor's owner's key, so the REGISTER with credentials, which goes to the owner, is
    accepted there, its nonce-count counted there; the main process standing in for a gone owner accepts
    it too. A worker's own challenges (a REGISTER over TCP) are signed with the owner's key as well."""
    keys = (b"0" * 32, b"1" * 32)
    assert aor_owner("alice", 2) == 1  # (alice: an account with a password, max_contacts 1)
    main = Registrar(reg.pbx, reg.db, keys[0], throttle=reg.throttle, worker_secrets=keys, index=0)
    owner = Registrar(reg.pbx, reg.db, keys[1], throttle=reg.throttle, worker_secrets=keys, index=1)
    challenge = main.stateless_challenge(register("alice"), SOURCE, "tag1")
    assert challenge.status == 401 and challenge.get("To").endswith(";tag=tag1")
    client = DigestClient("alice", "alice-secret")
    auth = client.authorize("REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate"))
    [ok] = await settle(owner.handle(register("alice", 2, auth=auth), SOURCE))
    assert ok.status == 200
    replay = owner.handle(register("alice", 3, auth=auth), SOURCE)  # same nonce and nc: refused where counted
    assert replay.status == 401 and "stale=true" in replay.get("WWW-Authenticate")
    # the owner gone, the main process takes its aors: the nonce-counts went with the owner, so its key's nonces
    # issued so far are answered stale there (not accepted: the owner's accepted Authorization would be replayed
    # once), and the nonces of its key the main process issues from then on are good there
    await asyncio.sleep(0.002)  # (a millisecond clock)
    main.worker_gone(1)
    again = client.authorize("REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate"))
    stale = main.handle(register("alice", 4, auth=again), SOURCE)
    assert stale.status == 401 and "stale=true" in stale.get("WWW-Authenticate")
    await asyncio.sleep(0.002)
    challenge = main.stateless_challenge(register("alice"), SOURCE, "tag2")
    again = client.authorize("REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate"))
    [ok] = await settle(main.handle(register("alice", 4, auth=again), SOURCE))
    assert ok.status == 200
    # a challenge the owner makes itself is signed with its key too: the main process's own key refuses it
    own = owner.handle(register("alice", 5), SOURCE)
    auth = client.authorize("REGISTER", "sip:registrar.test", own.get_all("WWW-Authenticate"))
    assert DigestServer(keys[0], "switchboard", algorithms=("MD5",)).knows_nonce(nonce_of(auth)) is False
    assert DigestServer(keys[1], "switchboard", algorithms=("MD5",)).knows_nonce(nonce_of(auth)) is True
    # what the stateless challenge leaves to handle: credentials, an endpoint without auth
    assert main.stateless_challenge(register("alice", 6, auth=auth), SOURCE, "t") is None
    assert main.stateless_challenge(register("u000"), SOURCE, "t") is None


async def test_an_authorization_accepted_before_a_restart_is_refused_after_it(reg):
    """The nonce key outlives a restart, the nonce-counts seen do not: the registrar of the new run answers a
    nonce issued before it started stale on first use (the client authenticates again at once), so an
    Authorization captured before the restart cannot be replayed after it within the nonce's lifetime."""
    challenge = reg.handle(register("alice"), SOURCE)
    client = DigestClient("alice", "alice-secret")
    auth = client.authorize("REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate"))
    [ok] = await settle(reg.handle(register("alice", 2, auth=auth), SOURCE))
    assert ok.status == 200
    assert reg.handle(register("alice", 3, auth=auth), SOURCE).status == 401  # replay, before the restart
    await asyncio.sleep(0.002)  # (a millisecond clock)
    restarted = Registrar(reg.pbx, reg.db, reg.secret, throttle=reg.throttle)
    replay = restarted.handle(register("alice", 4, auth=auth), SOURCE)
    assert replay.status == 401 and "stale=true" in replay.get("WWW-Authenticate")
    auth = client.authorize("REGISTER", "sip:registrar.test", replay.get_all("WWW-Authenticate"))
    [ok] = await settle(restarted.handle(register("alice", 5, auth=auth), SOURCE))
    assert ok.status == 200


def nonce_of(authorization: str) -> str:
    return parse_params(authorization)[1]["nonce"]


async def test_registers_decided_within_the_commit_window_share_one_commit(reg):
    """Below `eager_batch`, REGISTERs decided within `commit_window` of the first one (several turns of the
    loop apart) share one commit; one decided after it goes in the next."""
    write, groups = reg.write, []

    async def watched(db, batch):
        groups.append(sorted(w.aor for w in batch))
        await write(db, batch)

    reg.write = watched
    reg.commit_window = 0.05
    answers = []
    for user in USERS[:3]:
        answers.append(reg.handle(register(user), SOURCE))
        await asyncio.sleep(0)  # another turn of the loop: each used to be committed alone
    assert groups == [] and not any(a.done for a in answers)
    assert [r.status for r in await settle(*answers)] == [200] * 3
    late = reg.handle(register(USERS[3]), SOURCE)
    assert [r.status for r in await settle(late)] == [200]
    assert groups == [sorted(USERS[:3]), [USERS[3]]]


async def test_an_eager_commit_waits_for_another_writer(reg):
    if not reg.db.is_sqlite:
        pytest.skip("eager commits are a SQLite matter")
    release = asyncio.Event()
    holding = asyncio.Event()

    async def other_writer():
        async with reg.db.transaction():
            holding.set()
            await release.wait()

    writer = asyncio.ensure_future(other_writer())
    await holding.wait()
    answers = [reg.handle(register(u), SOURCE) for u in USERS[: reg.eager_batch]]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(a.done for a in answers)  # the commit waits for the write lock, in a task
    release.set()
    await writer
    assert [r.status for r in await settle(*answers)] == [200] * reg.eager_batch
    assert sorted(await stored(reg)) == sorted(USERS[: reg.eager_batch])


async def test_registers_of_one_aor_are_decided_one_after_the_other(reg):
    first = reg.handle(register("u001", 1, port=5070), SOURCE)
    second = reg.handle(register("u001", 1, port=5071), SOURCE)  # another contact, same aor
    third = reg.handle(register("u001", 2, port=5070, expires=0), SOURCE)  # removes the first contact
    assert isinstance(second, Deferred) and isinstance(third, Deferred)
    a, b, c = await settle(first, second, third)

    def contacts(resp) -> list[str]:  # expires left: 600, or 599 when a second ticked between two decisions
        values = resp.get_all("Contact")
        assert all(v.endswith((";expires=600", ";expires=599")) for v in values), values
        return sorted(v.rpartition(";")[0] for v in values)

    assert contacts(a) == ["<sip:u001@192.0.2.7:5070>"]
    assert contacts(b) == ["<sip:u001@192.0.2.7:5070>", "<sip:u001@192.0.2.7:5071>"]
    assert contacts(c) == ["<sip:u001@192.0.2.7:5071>"]
    assert await stored(reg) == {"u001": ["sip:u001@192.0.2.7:5071"]}


async def _rename_contacts(registrar: Registrar, old: str, new: str) -> None:
    async with registrar.db.transaction() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_failed_commit_acknowledges_no_register_of_its_group(reg):
    # a real failure of the write: the table is not there (renamed away meanwhile)
    await _rename_contacts(reg, "sip_contacts", "sip_contacts_away")
    answers = [reg.handle(register(u), SOURCE) for u in USERS[:3]]
    await until_done(*answers)
    errors = []
    for a in answers:
        got: list = []
        a.then(lambda resp, exc, got=got: got.append((resp, exc)))
        assert got and got[0][0] is None and got[0][1] is not None  # the engine answers 500
        errors.append(got[0][1])
    assert all(e is errors[0] for e in errors)  # one transaction, one failure for the group
    assert reg.pbx.contacts == {} and reg._busy == {}
    await _rename_contacts(reg, "sip_contacts_away", "sip_contacts")
    [ok] = await settle(reg.handle(register("u000", 2), SOURCE))  # the aor is free again
    assert ok.status == 200 and await stored(reg) == {"u000": ["sip:u000@192.0.2.7:5062"]}


async def test_a_query_and_refusals_are_answered_at_once(reg):
    [ok] = await settle(reg.handle(register("u002"), SOURCE))
    query = parse(register("u002", 2).to_bytes().replace(b"Contact: <sip:u002@192.0.2.7:5062>\r\n", b""))
    answer = reg.handle(query, SOURCE)
    assert isinstance(answer, Message) and answer.status == 200
    # the same binding; its expires counts down in whole seconds, so a second boundary between the
    # two answers (a slow PostgreSQL commit under load) shows 599 where the 200 said 600
    uri, _, expires = answer.get("Contact").partition(";expires=")
    ok_uri, _, ok_expires = ok.get("Contact").partition(";expires=")
    assert uri == ok_uri and int(ok_expires) - 1 <= int(expires) <= int(ok_expires)
    assert reg.handle(register("nobody"), SOURCE).status == 401  # challenged like an account
    assert reg.handle(register("u002", 3, expires=5), SOURCE).status == 423


async def test_digest_challenge_then_authenticated_register(reg):
    challenge = reg.handle(register("alice"), SOURCE)
    assert challenge.status == 401
    auth = DigestClient("alice", "alice-secret").authorize(
        "REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate")
    )
    [ok] = await settle(reg.handle(register("alice", 2, auth=auth), SOURCE))
    assert ok.status == 200
    replay = reg.handle(register("alice", 3, auth=auth), SOURCE)  # same nonce and nc
    assert replay.status == 401 and "stale=true" in replay.get("WWW-Authenticate")
    wrong = DigestClient("alice", "nope").authorize(
        "REGISTER", "sip:registrar.test", challenge.get_all("WWW-Authenticate")
    )
    assert reg.handle(register("alice", 4, auth=wrong), SOURCE).status == 403
