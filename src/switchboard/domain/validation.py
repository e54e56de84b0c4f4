"""Input validation shared by the domain services: pydantic models, errors mapped to Invalid."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from switchboard.domain.errors import Invalid

M = TypeVar("M", bound=BaseModel)

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_host(value: str) -> bool:
    """An IPv4/IPv6 literal or an RFC 1123 host name (what a probe can resolve and reach)."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if all(label.isdigit() for label in labels):  # '999.1.1.1' is a bad address, not a name
        return False
    return all(_HOST_LABEL.match(label) for label in labels)


def _host(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("can't be blank")
    if not is_host(value):
        raise ValueError("is not a valid IP address or host name")
    return value


def split_host_port(value: str) -> tuple[str, int | None]:
    """'host', 'host:port', '1.2.3.4:5070', '[2001:db8::1]:5070' or a bare IPv6 literal → (host, port|None).
    Raises ValueError when the port is not 1-65535."""
    v = value.strip()
    if v.startswith("["):
        host, sep, rest = v[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("is not a valid IP address or host name")
        port_text = rest[1:] if rest else None
    elif v.count(":") == 1:
        host, _, port_text = v.partition(":")
    else:
        host, port_text = v, None
    port = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            raise ValueError("has a port that is not 1-65535")
        port = int(port_text)
    return host, port


def _host_port(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("can't be blank")
    host, _ = split_host_port(value)
    if not is_host(host):
        raise ValueError("is not a valid IP address or host name")
    return value


def _required_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("can't be blank")
    return value


Host = Annotated[str, AfterValidator(_host)]
# an address a probe sends SIP to: a host with an optional port (default 5060)
HostPort = Annotated[str, AfterValidator(_host_port)]
RequiredText = Annotated[str, AfterValidator(_required_text)]


class Input(BaseModel):
    """Base of domain inputs: unknown fields ignored (as Rails strong parameters do)."""

    model_config = ConfigDict(extra="ignore", str_max_length=10_000)


def _message(err: dict[str, Any]) -> str:
    typ, ctx = err["type"], err.get("ctx") or {}
    if typ == "missing":
        return "can't be blank"
    if typ == "value_error":
        return str(ctx.get("error", err["msg"]))
    if typ == "string_too_long":
        return f"is too long (maximum is {ctx.get('max_length')} characters)"
    if typ == "string_too_short":
        return f"is too short (minimum is {ctx.get('min_length')} characters)"
    if typ in ("greater_than_equal", "greater_than"):
        return f"must be greater than {'or equal to ' if typ.endswith('equal') else ''}{ctx.get('ge', ctx.get('gt'))}"
    if typ in ("less_than_equal", "less_than"):
        return f"must be less than {'or equal to ' if typ.endswith('equal') else ''}{ctx.get('le', ctx.get('lt'))}"
    if typ.startswith(("int_", "float_")) or typ in ("int_type", "float_type"):
        return "is not a number"
    if typ.startswith("bool"):
        return "must be true or false"
    if typ == "literal_error":
        return f"must be one of: {ctx.get('expected')}"
    if typ.startswith("string"):
        return "must be text"
    return "is invalid"


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = err.get("loc") or ()
            field = str(loc[0]) if loc else None
            problems.append((field, _message(err)))
        raise Invalid(problems=problems) from None


_MDN_FORMATTING = re.compile(r"[\s().-]")


def e164(value: Any) -> str | None:
    """A phone number (MDN) in E.164 (`+` and 7 to 15 digits), or None when `value` is not one.
    Spaces, dots, dashes and parentheses are dropped; ten digits without `+` are a North American
    number (+1). The one rule for the kazoo model, the carrier adapter and the sandbox carrier."""
    if not isinstance(value, str):
        return None
    text = _MDN_FORMATTING.sub("", value.strip())
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not (digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15):
        return None
    if not plus and len(digits) == 10:
        digits = "1" + digits
    return "+" + digits
