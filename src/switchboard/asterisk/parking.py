"""res_parking.conf rules: parking lots, their `parkpos` ranges and timers. Pure: no I/O."""

from __future__ import annotations

from switchboard.asterisk.conf import ConfError, ConfFile, int_value, option_value


def parse_parkpos(value: str, where: str) -> tuple[int, int]:
    """`701-720` -> (701, 720); ConfError naming `where` when not a range of integers, start <= end."""
    lo, sep, hi = value.strip().partition("-")
    if not sep:
        raise ConfError(None, f"{where}: parkpos must be a range like 701-720, not {value!r}")
    a, b = int_value(lo, f"{where}: parkpos start"), int_value(hi, f"{where}: parkpos end")
    if a > b:
        raise ConfError(None, f"{where}: parkpos start {a} is after its end {b}")
    return a, b


def check(cf: ConfFile) -> None:
    """Raise ConfError for a lot res_parking would not load (bad parkpos, timers, findslot)."""
    for name in cf.names():
        if name == "general":
            continue
        opts = cf.resolved(name)
        if "parkpos" in opts:
            parse_parkpos(option_value(opts["parkpos"]), f"parking lot {name}")
        for key in ("parkingtime", "comebackdialtime"):
            if key in opts and option_value(opts[key]):
                int_value(option_value(opts[key]), f"parking lot {name}: {key}")
        findslot = option_value(opts.get("findslot", "first"))
        if findslot not in ("first", "next"):
            raise ConfError(None, f"parking lot {name}: findslot must be first or next")
