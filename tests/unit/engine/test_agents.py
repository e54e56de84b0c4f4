"""The agent pool without SIP: sync with agents.conf, request statuses, device states, AGENT() and the jade view
(engine/apps/agents.py). Calls with media are in tests/e2e/test_agents.py."""

from __future__ import annotations

import asyncio
import time

from switchboard.asterisk import files
from switchboard.asterisk.dialplan import validate
from switchboard.engine.apps import agents as pool
from switchboard.engine.channel import UP, Channel
from switchboard.engine.dialplan_exec import Runner
from switchboard.engine.runtime import Loaded, Pbx


class FakeCalls:
    def __init__(self, pbx):
        self.pbx = pbx


class FakeChannel(Channel):
    def __init__(self, pbx, resource="alice"):
        super().__init__(resource, context="internal", exten="9001")
        self.calls = FakeCalls(pbx)
        self.survives_peer = False

    async def ringing(self) -> None:
        pass

    async def hangup(self, cause: int = 16) -> None:
        self.mark_gone(cause)


def make_pbx(text: str) -> Pbx:
    pbx = Pbx()
    pbx.config["agent"] = Loaded(files.load("agent", text), 1)
    pbx.sync_agents()
    return pbx


def test_sync_adds_updates_and_removes_agents():
    pbx = make_pbx("[1001]\nfullname = A\n[1002]\n")
    assert set(pbx.agents) == {"1001", "1002"}
    first = pbx.agents["1001"]
    assert pbx.device_state("Agent:1001") == "UNAVAILABLE" and "Agent:1002" in pbx.devices()
    pbx.config["agent"] = Loaded(files.load("agent", "[1001]\nfullname = B\n"), 2)
    pbx.sync_agents()
    assert set(pbx.agents) == {"1001"} and pbx.agents["1001"] is first and first.cfg.fullname == "B"
    assert pbx.device_state("Agent:1002") == "INVALID"
    pbx.apply_module("app_agent_pool", False)
    assert pbx.agents == {}


def test_request_statuses_device_states_and_the_view():
    async def scenario():
        pbx = make_pbx("[1001]\nfullname = Agent 1001\nwrapuptime = 50\n")
        caller = FakeChannel(pbx)
        assert await pool.request_agent(caller, "nobody") == "INVALID"
        assert await pool.request_agent(caller, "1001") == "NOT_LOGGED_IN"
        agent = pbx.agents["1001"]
        view = agent.view()
        assert view["status"] == "AGENT_LOGGEDOFF" and view["channel_name"] is None and view["name"] == "Agent 1001"
        me = FakeChannel(pbx, "agent1")
        me.set_state(UP)
        agent.login(me, {})
        agent.set_state(pool.READY)
        assert pbx.device_state("Agent:1001") == "NOT_INUSE"
        view = agent.view()
        assert view["status"] == "AGENT_IDLE" and view["channel_name"] == me.name and view["channel_state"] == UP
        # nobody serves the call (no AgentLogin loop here): the request times out, the agent is ready again
        assert await pool.request_agent(caller, "1001", 0.05) == "NOT_CONNECTED"
        assert agent.state == pool.READY and agent.pending is None
        agent.set_state(pool.WRAPUP)
        agent.last_disconnect = time.monotonic()
        assert pbx.device_state("Agent:1001") == "INUSE"
        assert await pool.request_agent(caller, "1001") == "BUSY"
        await asyncio.sleep(0.08)
        assert pbx.device_state("Agent:1001") == "NOT_INUSE", "wrapuptime is in milliseconds"
        # AGENT()
        runner = Runner(caller, validate("[internal]\nexten => 9001,1,NoOp()\n"), "internal", "9001")
        assert runner.substitute("${AGENT(1001)}") == "LOGGEDIN"
        assert runner.substitute("${AGENT(1001:channel)}") == "PJSIP/agent1"
        assert runner.substitute("${AGENT(1001:fullchannel)}") == me.name
        assert runner.substitute("${AGENT(1001:name)}|${AGENT(1001:mohclass)}") == "Agent 1001|default"
        assert runner.substitute("${AGENT(nobody:status)}") == ""
        agent.logout()
        assert runner.substitute("${AGENT(1001:status)}") == "LOGGEDOUT"

    asyncio.run(scenario())
