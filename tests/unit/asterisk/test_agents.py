"""agents.conf rules (asterisk/agents.py) and the family's validation through the domain (400 material)."""

from __future__ import annotations

import pytest

from switchboard.asterisk import files
from switchboard.asterisk.agents import AgentConfig, agents
from switchboard.asterisk.conf import ConfError, parse
from switchboard.domain.errors import Invalid
from switchboard.domain.pbxconf import DEFAULTS, validate_text


def test_sections_are_agents_with_asterisk_defaults_and_templates():
    cf = parse(
        "[general]\n[t](!)\nackcall = yes\nautologoff => 15\n"
        "[1001](t)\nfullname = Mark\nwrapuptime = 2500\n[1002]\nackcall = nope\nmusiconhold = jazz\n"
    )
    got = agents(cf)
    assert set(got) == {"1001", "1002"}  # neither [general] nor the template is an agent
    assert got["1001"] == AgentConfig(
        "1001", fullname="Mark", ackcall=True, acceptdtmf="#", autologoff=15, wrapuptime=2500
    )
    assert got["1002"].ackcall is False and got["1002"].musiconhold == "jazz"  # ast_true: anything else is no
    assert got["1002"].custom_beep == "beep" and got["1002"].recordagentcalls is False


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1001]\nwrapuptime = soon\n", "unsigned integer"),
        ("[1001]\nautologoff = -1\n", "unsigned integer"),
        ("[1001]\nautologoff = 4294967296\n", "unsigned integer"),
        ("[1001]\ncolour = blue\n", "unknown option"),
        ("[general]\npersistentagents = yes\n", "reserved"),
        ("[agents]\nagent => 1001,4321,Mark\n", "[agents]"),
        ("[t](!)\nbogus = 1\n[1001](t)\n", "unknown option"),
    ],
)
def test_what_app_agent_pool_would_not_load_is_refused(text, reason):
    with pytest.raises(ConfError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        files.load("agent", text)
    with pytest.raises(Invalid):
        validate_text("agent", text)


def test_the_default_file_loads_and_has_no_agent():
    assert agents(files.load("agent", DEFAULTS["agent"])) == {}
    assert files.FILES["agent"] == "agents.conf"
