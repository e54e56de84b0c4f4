"""Originating calls: what a client asks for (`parse_originate`, the rules below) and what the call
engine provides (`Originator`, implemented by the engine's call service; `Services.calls`).

Request fields (jade's `POST /admin/core/channels`, ARI-like):
- endpoint: string, required: `PJSIP/<endpoint>` (an endpoint of pjsip.conf) or
  `PJSIP/<number>@<trunk>` (a number through a trunk the engine runs, or through a pjsip.conf
  endpoint as Asterisk's PJSIP/number@endpoint). The technology is PJSIP (any case). An endpoint
  or trunk that does not exist is NotFound (404); a malformed one Invalid (400).
- context, exten: strings, required, non-empty, at most 80 characters (AST_MAX_CONTEXT /
  AST_MAX_EXTENSION), no whitespace or control characters: where the channel goes once answered.
- priority: integer 1..65535 (a JSON integer, not a string or boolean); default 1.
- caller_id: `name <num>`, `"name" <num>` or a bare number; default none (the engine's default).
- timeout: seconds to wait for an answer, integer 1..600; default 30.
- variables: object of channel variables (names: letters, digits, `_`, `(`, `)`, `.`, `-`, at
  most 80 characters; values: strings up to 1024 characters, or numbers, sent as text); at most
  100; default {}.
Every problem of a request is reported together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.domain.errors import Invalid, NotFound

TIMEOUT_DEFAULT, TIMEOUT_MAX = 30, 600
PRIORITY_MAX = 65535
MAX_NAME = 80
MAX_VARIABLES, MAX_VALUE = 100, 1024
_TOKEN = re.compile(r"^[^\s\x00-\x1f\x7f]+$")
_VAR_NAME = re.compile(r"^[A-Za-z0-9_().-]+$")
_CALLER_ID = re.compile(r'^\s*(?:"(?P<qname>[^"]*)"|(?P<name>[^<"]*?))\s*<(?P<num>[^<>]*)>\s*$')


class LiveChannel(Protocol):
    """What the API needs of a live channel (engine.channel.Channel has it)."""

    uniqueid: str

    def view(self) -> dict: ...

    async def hangup(self, cause: int = 16) -> None: ...


class Originator(Protocol):
    """The call engine's originate (`Services.calls`): start a call to `endpoint` and return its
    channel at once, before it is answered (state Down or Ringing; already in `Pbx.channels`). Once
    answered, the channel runs the dialplan at `context`,`exten`,`priority` with `caller_id` (as the
    client gave it, "" for none; `parse_caller_id` splits it) and `variables` set. `timeout`:
    seconds to wait for an answer before giving up (the channel then ends, cause 19 no answer).
    Arguments were validated by `parse_originate` and the endpoint or trunk exists; LookupError
    when the endpoint has nothing to call (no registered contact)."""

    async def originate(
        self,
        *,
        endpoint: str,
        context: str,
        exten: str,
        priority: int,
        caller_id: str,
        timeout: int,
        variables: dict[str, str],
    ) -> LiveChannel: ...


@dataclass(frozen=True)
class OriginateRequest:
    endpoint: str  # "PJSIP/<resource>" or "PJSIP/<number>@<resource>"
    resource: str  # the endpoint or trunk name
    number: str | None  # the number dialled through a trunk (None for an endpoint)
    context: str
    exten: str
    priority: int = 1
    caller_id: str | None = None
    timeout: int = TIMEOUT_DEFAULT
    variables: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of Originator.originate."""
        return {
            "endpoint": self.endpoint,
            "context": self.context,
            "exten": self.exten,
            "priority": self.priority,
            "caller_id": self.caller_id or "",
            "timeout": self.timeout,
            "variables": dict(self.variables),
        }


def parse_caller_id(text: str) -> tuple[str, str]:
    """(name, number) of `name <num>`, `"name" <num>` or a bare number (Asterisk's callerid forms)."""
    m = _CALLER_ID.match(text)
    if m:
        return (m.group("qname") if m.group("qname") is not None else m.group("name") or "").strip(), m.group(
            "num"
        ).strip()
    return "", text.strip()


def _int(value: Any, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


def parse_originate(
    data: dict[str, Any],
    *,
    endpoint_exists: Callable[[str], bool],
    trunk_exists: Callable[[str], bool],
) -> OriginateRequest:
    """Validate an originate request (the module's rules): Invalid (every problem) or NotFound."""
    problems: list[tuple[str, str]] = []

    def text(name: str) -> str:
        value = data.get(name)
        if value is None:
            problems.append((name, "is required"))
            return ""
        if not isinstance(value, str) or not value.strip():
            problems.append((name, "must be a non-empty string"))
            return ""
        value = value.strip()
        if len(value) > MAX_NAME or not _TOKEN.match(value):
            problems.append((name, f"must be at most {MAX_NAME} characters without spaces or control characters"))
            return ""
        return value

    endpoint, resource, number = "", "", None
    raw = data.get("endpoint")
    if raw is None:
        problems.append(("endpoint", "is required"))
    elif not isinstance(raw, str) or not _TOKEN.match(raw.strip() or " "):
        problems.append(("endpoint", 'must be "PJSIP/<endpoint>" or "PJSIP/<number>@<trunk>"'))
    else:
        tech, slash, rest = raw.strip().partition("/")
        target, at, via = rest.partition("@")
        if tech.upper() != "PJSIP" or not slash or not target or (at and not via) or "@" in via or len(rest) > 255:
            problems.append(("endpoint", 'must be "PJSIP/<endpoint>" or "PJSIP/<number>@<trunk>"'))
        elif at:
            resource, number = via, target
            endpoint = f"PJSIP/{number}@{resource}"
        else:
            resource = target
            endpoint = f"PJSIP/{resource}"

    context, exten = text("context"), text("exten")

    priority = data.get("priority")
    if priority is None:
        priority = 1
    elif _int(priority, 1, PRIORITY_MAX) is None:
        problems.append(("priority", f"must be an integer from 1 to {PRIORITY_MAX}"))
        priority = 1

    caller_id = data.get("caller_id")
    if caller_id is not None:
        if not isinstance(caller_id, str) or len(caller_id) > 255 or any(ord(c) < 32 for c in caller_id):
            problems.append(("caller_id", 'must be a string like "name <number>" or "number"'))
            caller_id = None
        else:
            caller_id = caller_id.strip() or None
            if caller_id is not None and "<" in caller_id and not _CALLER_ID.match(caller_id):
                problems.append(("caller_id", 'must be a string like "name <number>" or "number"'))
                caller_id = None

    timeout = data.get("timeout")
    if timeout is None:
        timeout = TIMEOUT_DEFAULT
    elif _int(timeout, 1, TIMEOUT_MAX) is None:
        problems.append(("timeout", f"must be an integer number of seconds from 1 to {TIMEOUT_MAX}"))
        timeout = TIMEOUT_DEFAULT

    variables: dict[str, str] = {}
    raw_vars = data.get("variables")
    if raw_vars is not None:
        if not isinstance(raw_vars, dict):
            problems.append(("variables", "must be an object of names to string values"))
        elif len(raw_vars) > MAX_VARIABLES:
            problems.append(("variables", f"must hold at most {MAX_VARIABLES} variables"))
        else:
            for k, v in raw_vars.items():
                if not _VAR_NAME.match(k) or len(k) > MAX_NAME:
                    problems.append(("variables", f"{k!r} is not a variable name"))
                elif isinstance(v, bool) or not isinstance(v, str | int | float):
                    problems.append(("variables", f"{k}: the value must be a string or a number"))
                elif isinstance(v, str) and (len(v) > MAX_VALUE or "\x00" in v):
                    problems.append(("variables", f"{k}: the value must be at most {MAX_VALUE} characters"))
                else:
                    variables[k] = v if isinstance(v, str) else str(v)

    if problems:
        raise Invalid(problems=problems)
    if number is not None:
        if not (trunk_exists(resource) or endpoint_exists(resource)):
            raise NotFound("trunk", resource)
    elif not endpoint_exists(resource):
        raise NotFound("endpoint", resource)
    return OriginateRequest(endpoint, resource, number, context, exten, priority, caller_id, timeout, variables)
