"""agents.conf rules (app_agent_pool): one section per agent id, its options, their defaults. Pure: no I/O.

As Asterisk's configuration framework loads the file: every section that is not a template is an agent whose
id is the section name, except ``[general]`` (reserved: it takes no option) and ``[agents]`` (the old chan_agent
layout, which app_agent_pool does not read: refused rather than silently ignored). An option the module does
not know is an error, and so is a number that is not an unsigned integer; booleans read as Asterisk's
``ast_true`` (yes, true, y, t, 1, on; anything else is no). Templates (``[t](!)``, ``[1001](t)``) apply.

Options (defaults): ``fullname`` (""), ``ackcall`` (no), ``acceptdtmf`` (#), ``autologoff`` (0 seconds: the time an
agent with ackcall has to acknowledge a call before being logged off; 0 waits forever), ``wrapuptime``
(0 milliseconds after a call before the next one), ``musiconhold`` (default), ``recordagentcalls`` (no),
``custom_beep`` (beep: the sound that alerts the agent to a call)."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.asterisk.conf import ConfError, ConfFile, option_value

DEFAULTS = {
    "fullname": "",
    "ackcall": "no",
    "acceptdtmf": "#",
    "autologoff": "0",
    "wrapuptime": "0",
    "musiconhold": "default",
    "recordagentcalls": "no",
    "custom_beep": "beep",
}
_UINT = ("autologoff", "wrapuptime")
_UINT_MAX = 2**32 - 1


@dataclass(frozen=True)
class AgentConfig:
    id: str
    fullname: str = ""
    ackcall: bool = False
    acceptdtmf: str = "#"
    autologoff: int = 0  # seconds
    wrapuptime: int = 0  # milliseconds
    musiconhold: str = "default"
    recordagentcalls: bool = False
    custom_beep: str = "beep"


def is_true(value: str) -> bool:
    """ast_true."""
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _uint(value: str, where: str, line: int | None) -> int:
    v = value.strip()
    if not (v.isascii() and v.isdigit()) or int(v) > _UINT_MAX:
        raise ConfError(line, f"{where} must be an unsigned integer, not {value!r}")
    return int(v)


def _sections(cf: ConfFile):
    for name in cf.names():
        sec = cf.get(name)
        if sec is None or sec.template:
            continue
        yield name, cf.expanded(name), sec.line


def check(cf: ConfFile) -> dict[str, AgentConfig]:
    """Raise ConfError for a file app_agent_pool would not load; else the agents by id."""
    out: dict[str, AgentConfig] = {}
    for name, options, line in _sections(cf):
        if name == "general":
            if options:
                o = options[0]
                raise ConfError(o.line, f"[general] is reserved and takes no option (found {o.key!r})")
            continue
        if name == "agents":
            raise ConfError(line, "[agents] is not read by app_agent_pool: write one section per agent id")
        values = dict(DEFAULTS)
        for o in options:
            key = o.key.strip().lower()
            if key not in DEFAULTS:
                raise ConfError(o.line, f"agent {name}: unknown option {o.key!r}")
            value = option_value(o.value)
            if key in _UINT:
                _uint(value, f"agent {name}: {key}", o.line)
            values[key] = value
        out[name] = AgentConfig(
            id=name,
            fullname=values["fullname"],
            ackcall=is_true(values["ackcall"]),
            acceptdtmf=values["acceptdtmf"],
            autologoff=int(values["autologoff"]),
            wrapuptime=int(values["wrapuptime"]),
            musiconhold=values["musiconhold"] or "default",
            recordagentcalls=is_true(values["recordagentcalls"]),
            custom_beep=values["custom_beep"],
        )
    return out


def agents(cf: ConfFile) -> dict[str, AgentConfig]:
    """The agents a (checked) file defines, by id."""
    return check(cf)
