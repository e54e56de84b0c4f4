"""The agent pool (app_agent_pool) through a real `switchboard serve` and real phones (tests/call_peers.py):
AgentLogin with hold music, AgentRequest bridging a caller with the waiting agent (a tone measured each way),
wrapup, ackcall with '#', autologoff, logout by hanging up, AGENT_STATUS / AGENT(), the `Agent:<id>` device state
and jade's /agents, and agents.conf written through jade (a refused file, then one that applies to the next
login). One server per backend (SQLite, PostgreSQL) for the module, as test_calls.py."""

from __future__ import annotations

import threading
import time

import pytest

from tests.call_peers import Phone, dominant_frequency, rms
from tests.sip_peers import EXTENSIONS_PATH, Jade, running_pbx, wait_for


def _account(name: str) -> str:
    return f"""
[{name}]
type=endpoint
context=internal
auth={name}
aors={name}
callerid="{name.title()}" <{name}>
allow=ulaw

[{name}]
type=auth
username={name}
password={name}-pass

[{name}]
type=aor
max_contacts=1
"""


PJSIP = "".join(_account(n) for n in ("agent1", "agent2", "agent3", "alice", "carol"))

EXTENSIONS = """
[general]
autofallthrough=yes

[internal]
exten => 8001,1,AgentLogin(1001)
 same => n,Hangup()
exten => 8002,1,AgentLogin(1002,s)
 same => n,Hangup()
exten => 8003,1,AgentLogin(1003,s)
 same => n,Hangup()
exten => 8004,1,AgentLogin(1004,s)
 same => n,Hangup()
exten => 8009,1,AgentLogin(9999)
 same => n,Set(LOGIN_STATUS=${AGENT_STATUS})
 same => n,Wait(5)
exten => _900X,1,AgentRequest(100${EXTEN:3})
 same => n,Answer()
 same => n,Set(STATUS=${AGENT_STATUS})
 same => n,Set(AGENT_STATE=${AGENT(100${EXTEN:3})})
 same => n,Set(AGENT_CHAN=${AGENT(100${EXTEN:3}:channel)})
 same => n,Set(AGENT_NAME=${AGENT(100${EXTEN:3}:name)})
 same => n,Wait(5)
 same => n,Hangup()
exten => 7000,1,Answer()
 same => n,Queue(agents-q,,,,20)
 same => n,Set(QSTATUS=${QUEUESTATUS})
 same => n,Wait(5)
exten => 9099,1,AgentRequest(nobody)
 same => n,Answer()
 same => n,Set(STATUS=${AGENT_STATUS})
 same => n,Wait(5)
"""

AGENTS = """
[general]

[1001]
fullname = Agent 1001
musiconhold = default
wrapuptime = 3000

[ack](!)
ackcall = yes
acceptdtmf = #
autologoff = 3

[1002](ack)
fullname = Agent 1002

[1004]
fullname = Queue agent 1004
"""


QUEUES = """
[general]

[agents-q]
strategy = ringall
timeout = 5
retry = 1
member => Local/1004@agents,0,Agent 1004,Agent:1004
"""


class Pbx:
    def __init__(self, srv, jade: Jade):
        self.srv, self.jade = srv, jade

    @property
    def port(self) -> int:
        return self.srv.sip_port

    def channels(self) -> list[dict]:
        return self.jade.get("/admin/core/channels")["list"]

    def agent(self, agent_id: str) -> dict:
        return self.jade.get(f"/agents/{agent_id}")

    def device(self, agent_id: str) -> str:
        return self.jade.get(f"/device_states/Agent:{agent_id}")["state"]

    def variables_of(self, prefix: str, key: str, timeout: float = 8.0) -> dict:
        """The variables of the live channel whose name starts with `prefix` once it has `key`."""
        found = wait_for(
            lambda: [c for c in self.channels() if c["channel"].startswith(prefix) and key in c["variables"]],
            timeout,
        )
        assert found, self.channels()
        return found[0]["variables"]


@pytest.fixture(scope="module")
def pbx(backend, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"agents-{backend}")
    files = {
        EXTENSIONS_PATH: EXTENSIONS,
        "/admin/agent/configurations/agents.conf": AGENTS,
        "/admin/queue/configurations/queues.conf": QUEUES,
    }
    with running_pbx(backend, tmp, PJSIP, files, SWITCHBOARD_RTP_PORTS="30000-34999") as (srv, jade):
        yield Pbx(srv, jade)


def _login(pbx: Pbx, phone: Phone, user: str, exten: str, agent_id: str):
    call = phone.call(pbx.port, exten, user=user, password=f"{user}-pass")
    assert call.status == 200
    assert wait_for(lambda: pbx.agent(agent_id)["status"] == "AGENT_IDLE", 5), pbx.agent(agent_id)
    assert wait_for(lambda: pbx.device(agent_id) == "NOT_INUSE", 5), "ready once agent-loginok is played"
    return call


# ---- login, a call, wrapup, logout ----------------------------------------------------------------------
def test_agent_waits_with_music_takes_a_call_wraps_up_and_logs_out(pbx):
    assert {a["id"] for a in pbx.jade.get("/agents")["list"]} == {"1001", "1002", "1004"}
    assert pbx.device("1001") == "UNAVAILABLE"
    assert pbx.agent("1001")["status"] == "AGENT_LOGGEDOFF"
    with Phone(user="agent1") as ag, Phone(user="alice") as a, Phone(user="carol") as c:
        login = _login(pbx, ag, "agent1", "8001", "1001")
        view = pbx.agent("1001")
        assert view["name"] == "Agent 1001" and view["channel_name"].startswith("PJSIP/agent1-")
        assert view["channel_state_desc"] == "Up" and view["exten"] == "8001" and view["context"] == "internal"
        assert abs(view["logged_in_time"] - time.time()) < 10 and view["unique_id"]
        assert pbx.device("1001") == "NOT_INUSE"
        # hold music while waiting (after agent-loginok)
        time.sleep(1.5)
        t0 = time.monotonic()
        time.sleep(1.5)
        music = ag.received(since=t0)
        assert len(music.audio) >= 50 and rms(music.pcm) > 100, len(music.audio)

        # a caller: bridged with the agent, a tone each way
        invite = a.invite(pbx.port, "9001", user="alice", password="alice-pass")
        assert invite.wait_final(10) == 200
        assert wait_for(lambda: pbx.agent("1001")["status"] == "AGENT_ONCALL", 5), pbx.agent("1001")
        assert pbx.device("1001") == "INUSE"
        assert pbx.agent("1001")["connected_line_num"] == "alice"
        time.sleep(0.5)  # the beep is over
        t0 = time.monotonic()
        back = threading.Thread(target=login.send_tone, args=(700, 1.5))
        back.start()
        invite.send_tone(1000, 1.5)
        back.join()
        time.sleep(0.3)
        at_agent, at_caller = ag.received(since=t0), a.received(since=t0)
        assert len(at_agent.audio) >= 60 and len(at_caller.audio) >= 60, (len(at_agent.audio), len(at_caller.audio))
        assert abs(dominant_frequency(at_agent.pcm) - 1000) < 15
        assert abs(dominant_frequency(at_caller.pcm) - 700) < 15

        # the caller hangs up: the agent stays logged in, in wrapup (3000 ms): a request meanwhile is BUSY
        assert invite.bye().status == 200
        assert wait_for(lambda: pbx.agent("1001")["status"] == "AGENT_IDLE", 5)
        assert login.wait_bye(0.5) is None, "the agent's channel survives its caller"
        assert pbx.device("1001") == "INUSE"
        busy = c.invite(pbx.port, "9001", user="carol", password="carol-pass")
        assert busy.wait_final(5) == 200  # AgentRequest failed; the dialplan answers and goes on
        v = pbx.variables_of("PJSIP/carol-", "AGENT_NAME")
        assert v["STATUS"] == "BUSY" and v["AGENT_STATE"] == "LOGGEDIN"
        assert v["AGENT_CHAN"] == "PJSIP/agent1" and v["AGENT_NAME"] == "Agent 1001"
        busy.bye()
        assert wait_for(lambda: pbx.device("1001") == "NOT_INUSE", 5), "wrapup ends"
        t0 = time.monotonic()
        time.sleep(1.0)
        assert len(ag.received(since=t0).audio) >= 30, "back to hold music"

        # logout by hanging up
        assert login.bye().status == 200
        assert wait_for(lambda: pbx.device("1001") == "UNAVAILABLE", 5)
        view = pbx.agent("1001")
        assert view["status"] == "AGENT_LOGGEDOFF" and view["channel_name"] is None
        late = c.invite(pbx.port, "9001", user="carol", password="carol-pass")
        assert late.wait_final(5) == 200
        v = pbx.variables_of("PJSIP/carol-", "AGENT_NAME")
        assert v["STATUS"] == "NOT_LOGGED_IN" and v["AGENT_STATE"] == "LOGGEDOUT"
        late.bye()
    assert wait_for(lambda: pbx.channels() == [], 5), pbx.channels()


# ---- ackcall -----------------------------------------------------------------------------------------
def test_ackcall_connects_on_hash_and_no_ack_logs_the_agent_off(pbx):
    with Phone(user="agent2") as ag, Phone(user="alice") as a:
        login = _login(pbx, ag, "agent2", "8002", "1002")
        invite = a.invite(pbx.port, "9002", user="alice", password="alice-pass")
        assert wait_for(lambda: any(r.status == 180 for r in invite.responses), 5), "the caller hears ringing"
        assert wait_for(lambda: pbx.device("1002") == "INUSE", 3)
        time.sleep(1.0)
        assert not any(r.status == 200 for r in invite.responses), "not connected before the agent acknowledges"
        login.send_dtmf("#")
        assert invite.wait_final(5) == 200
        assert wait_for(lambda: pbx.agent("1002")["status"] == "AGENT_ONCALL", 5)
        time.sleep(0.3)
        t0 = time.monotonic()
        invite.send_tone(1000, 1.0)
        time.sleep(0.3)
        heard = ag.received(since=t0)
        assert len(heard.audio) >= 40 and abs(dominant_frequency(heard.pcm) - 1000) < 15
        invite.bye()
        assert wait_for(lambda: pbx.device("1002") == "NOT_INUSE", 5), "no wrapuptime: ready at once"

        # no '#' within autologoff (3 s): the agent is logged off, the caller gets NOT_CONNECTED
        second = a.invite(pbx.port, "9002", user="alice", password="alice-pass")
        assert login.wait_bye(8), "the agent's channel is hung up"
        assert second.wait_final(5) == 200
        assert pbx.variables_of("PJSIP/alice-", "AGENT_NAME")["STATUS"] == "NOT_CONNECTED"
        assert pbx.device("1002") == "UNAVAILABLE"
        second.bye()


# ---- failures ---------------------------------------------------------------------------------------------
def test_a_queued_call_reaches_the_logged_in_agent(pbx):
    """An agent as a queue member (Local/<id>@agents, state Agent:<id>): AgentLogin, then a caller in
    the queue is bridged with the agent's waiting channel (a tone each way)."""
    with Phone(user="agent3") as agent, Phone(user="carol") as caller:
        login = _login(pbx, agent, "agent3", "8004", "1004")
        members = pbx.jade.get("/admin/queue/members")["list"]
        member = next(m for m in members if m["queue_name"] == "agents-q")
        assert member["state_interface"] == "Agent:1004"
        call = caller.call(pbx.port, "7000", user="carol", password="carol-pass")
        assert call.status == 200
        assert wait_for(lambda: pbx.agent("1004")["status"] == "AGENT_ONCALL", 10), pbx.agent("1004")
        t0 = time.monotonic()
        sender = threading.Thread(target=login.send_tone, args=(700, 1.0))
        sender.start()
        call.send_tone(1000, 1.0)
        sender.join()
        time.sleep(0.3)
        assert abs(dominant_frequency(agent.received(since=t0).pcm) - 1000) < 15
        assert abs(dominant_frequency(caller.received(since=t0).pcm) - 700) < 15
        assert call.bye().status == 200
        assert wait_for(lambda: pbx.agent("1004")["status"] in ("AGENT_IDLE", "AGENT_WRAPUP"), 5)
        login.bye()


def test_unknown_agents_set_agent_status(pbx):
    with Phone(user="alice") as a:
        call = a.call(pbx.port, "9099", user="alice", password="alice-pass")
        assert call.status == 200
        assert pbx.variables_of("PJSIP/alice-", "STATUS")["STATUS"] == "INVALID"
        call.bye()
        call = a.call(pbx.port, "8009", user="alice", password="alice-pass")
        assert call.status == 200  # AgentLogin answers first
        assert pbx.variables_of("PJSIP/alice-", "LOGIN_STATUS")["LOGIN_STATUS"] == "INVALID"
        call.bye()
    r = pbx.jade.call("GET", "/agents/nobody")
    assert r.status_code == 404
    assert pbx.jade.get("/device_states/Agent:1001")["device"] == "Agent:1001"


def test_a_second_login_of_the_same_agent_is_already_logged_in(pbx):
    with Phone(user="agent1") as ag, Phone(user="agent3") as other:
        login = _login(pbx, ag, "agent1", "8001", "1001")
        dup = other.call(pbx.port, "8001", user="agent3", password="agent3-pass")
        assert dup.wait_bye(5), "AgentLogin fails at once (ALREADY_LOGGED_IN) and the dialplan hangs up"
        assert pbx.agent("1001")["channel_name"].startswith("PJSIP/agent1-")
        login.bye()
        assert wait_for(lambda: pbx.device("1001") == "UNAVAILABLE", 5)


# ---- agents.conf through jade --------------------------------------------------------------------------
def test_agents_conf_is_validated_and_applies_to_the_next_login(pbx):
    jade = pbx.jade
    files = jade.get("/admin/agent/configurations")["list"]
    assert files[0]["name"] == "agents.conf" and "[1001]" in files[0]["data"]
    for bad in (AGENTS + "\n[1003]\nwrapuptime = soon\n", AGENTS + "\n[1003]\ncolour = blue\n", "[agents]\nx=1\n"):
        r = jade.call("PUT", "/admin/agent/configurations/agents.conf", json={"data": bad})
        assert r.status_code == 400, r.text
        assert r.json()["statuscode"] == 400 and "agents.conf" in r.json()["error"]["message"]
    assert {a["id"] for a in jade.get("/agents")["list"]} == {"1001", "1002", "1004"}
    changed = AGENTS.replace("fullname = Agent 1001", "fullname = Renamed 1001") + "\n[1003]\nfullname = New\n"
    text_plain = {"Content-Type": "text/plain"}
    r = jade.call("PUT", "/admin/agent/configurations/agents.conf", content=changed, headers=text_plain)
    assert r.status_code == 200, r.text
    assert {a["id"] for a in jade.get("/agents")["list"]} == {"1001", "1002", "1003", "1004"}
    names = [f["name"] for f in jade.get("/admin/agent/configurations")["list"]]
    assert names[0] == "agents.conf" and any(n.startswith("agents.conf.") for n in names[1:])
    assert jade.get("/admin/agent/cfg_agents/1003")["data"] == {"fullname": "New"}
    with Phone(user="agent1") as ag, Phone(user="agent3") as ag3:
        login = _login(pbx, ag, "agent1", "8001", "1001")
        assert pbx.agent("1001")["name"] == "Renamed 1001"
        login3 = _login(pbx, ag3, "agent3", "8003", "1003")
        assert pbx.device("1003") == "NOT_INUSE"
        # removing a logged-in agent logs it off
        r = jade.call("DELETE", "/admin/agent/cfg_agents/1003")
        assert r.status_code == 200, r.text
        assert login3.wait_bye(5)
        assert {a["id"] for a in jade.get("/agents")["list"]} == {"1001", "1002", "1004"}
        login.bye()
    r = jade.call("PUT", "/admin/agent/configurations/agents.conf", json={"data": AGENTS})
    assert r.status_code == 200, r.text
