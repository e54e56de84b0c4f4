"""The four configuration files the engine loads, by family, and how each one's text is parsed and checked.
Pure: no I/O; errors are `ConfError` / `PjsipError` (the domain turns them into Invalid)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from switchboard.asterisk import agents, conf, dialplan, parking, pjsip, queues

FILES = {
    "dialplan": "extensions.conf",
    "pjsip": "pjsip.conf",
    "queue": "queues.conf",
    "park": "res_parking.conf",
    "agent": "agents.conf",
}


def _section_options(cf: conf.ConfFile, sec: conf.Section, seen: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for base in sec.bases:
        b = cf.get(base)
        if b is None:
            raise conf.ConfError(sec.start + 1, f"section {sec.name} inherits unknown template {base}")
        if base in seen or base == sec.name:
            raise conf.ConfError(sec.start + 1, f"template inheritance cycle through {base}")
        out += _section_options(cf, b, (*seen, sec.name))
    out += [(o.key, o.value.strip()) for o in sec.options]
    return out


def pjsip_sections(cf: conf.ConfFile):
    """The (name, resolved options, repeated options) triples asterisk.pjsip.load takes. A name may hold
    several objects (an endpoint, an auth and an aor named alike), each its own section, so
    templates are applied per section, not per name."""
    out = []
    for sec in cf.sections:
        if sec.template:
            continue
        resolved: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in _section_options(cf, sec):
            resolved[k] = v
            multi.setdefault(k, []).append(v)
        out.append((sec.name, resolved, multi))
    return out


def load(family: str, text: str, provided: Iterable[str] = ()) -> Any:
    """Parse and check one family's file; returns what the engine loads (a Dialplan, a PjsipConfig, or the
    ConfFile of queues.conf / res_parking.conf / agents.conf). Raises ConfError or PjsipError. `provided`: for
    extensions.conf, the contexts res_parking generates (`parking.context_names`), which includes may name."""
    if family == "dialplan":
        return dialplan.validate(text, provided)
    cf = conf.parse(text)
    if family == "pjsip":
        return pjsip.load(pjsip_sections(cf))
    if family == "queue":
        queues.check(cf)
    elif family == "park":
        parking.check(cf)
    elif family == "agent":
        agents.check(cf)
    return cf
