"""jade agents.conf (Switchboard's addition: the jade spec has no agent configuration routes): the file level
routes every configuration family has (`/admin/agent/configurations[/{name}]`: the live agents.conf and its
backups; PUT validated by app_agent_pool's rules, asterisk/agents.py) and the per-agent sections
(`/admin/agent/cfg_agents[/{id}]`, as cfg_queues). A write applies to the next agent login (or, for an agent
logged in, after its current call) without a restart. The live agents are `/agents` (live.py)."""

from __future__ import annotations

from switchboard.api.jade.configs import add_config_routes, add_section_routes
from switchboard.api.jade.routing import router

api = router("agent")
add_config_routes(api, "/admin/agent", "agent", "agents.conf (Switchboard's addition)")
add_section_routes(api, "/admin/agent/cfg_agents", "agent", "agent section of agents.conf (Switchboard's addition)")
