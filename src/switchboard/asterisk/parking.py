"""res_parking.conf rules: parking lots, their `parkpos` ranges and timers, and the dialplan res_parking
generates for them. Pure: no I/O.

* `lots(cf)`: every lot of the file (sections other than ``[general]``; templates are not lots) with
  res_parking's defaults (``context`` parkedcalls, ``parkpos`` 701-750, ``parkingtime`` 45,
  ``comebacktoorigin`` yes, ``comebackcontext`` parkedcallstimeout, ``comebackdialtime`` 30, ``findslot``
  first, ``parkinghints`` no, ``parkext_exclusive`` no). As res_parking's verify_default_parking_lot, a
  ``default`` lot always exists: when the file does not configure one it has those defaults and
  ``parkext`` 700 (a configured lot, ``default`` included, has a park extension only when it sets one).
* `contexts(lots)`: res_parking's extensions (registrar res_parking), for each lot with a ``parkext``: in the
  lot's context, ``parkext`` runs ``Park()`` (``Park(<lot>)`` with ``parkext_exclusive=yes``) and every space
  N runs ``ParkedCall(<lot>,N)``; with ``parkinghints=yes`` each space also has the hint
  ``park:N@<context>``. Plus the (empty) ``park-dial`` context where a timed-out call's callback extension
  is added (`PARK_DIAL_CONTEXT`).
* `flat(dial_string)`: PARKER_FLAT, the dial string with ``/`` turned into ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.asterisk.conf import ConfError, ConfFile, int_value, option_value
from switchboard.asterisk.dialplan import Context, Extension, Step

DEFAULT_LOT = "default"
DEFAULT_PARKEXT = "700"
PARK_DIAL_CONTEXT = "park-dial"
_YES = ("yes", "true", "y", "t", "1", "on")


@dataclass(frozen=True)
class Lot:
    name: str
    parkext: str = ""
    context: str = "parkedcalls"
    start: int = 701
    stop: int = 750
    parkingtime: int = 45
    findslot: str = "first"
    comebacktoorigin: bool = True
    comebackcontext: str = "parkedcallstimeout"
    comebackdialtime: int = 30
    parkedmusicclass: str = ""
    parkext_exclusive: bool = False
    parkinghints: bool = False

    def spaces(self) -> range:
        return range(self.start, self.stop + 1)


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
    lots(cf)


def _lot(name: str, opts: dict[str, str]) -> Lot:
    where = f"parking lot {name}"
    start, stop = parse_parkpos(opts.get("parkpos") or "701-750", where)
    ints = {}
    for key, default in (("parkingtime", 45), ("comebackdialtime", 30)):
        ints[key] = int_value(opts[key], f"{where}: {key}") if opts.get(key) else default
    findslot = (opts.get("findslot") or "first").lower()
    if findslot not in ("first", "next"):
        raise ConfError(None, f"{where}: findslot must be first or next")
    return Lot(
        name,
        parkext=opts.get("parkext", ""),
        context=opts.get("context") or "parkedcalls",
        start=start,
        stop=stop,
        parkingtime=ints["parkingtime"],
        findslot=findslot,
        comebacktoorigin=(opts.get("comebacktoorigin") or "yes").lower() in _YES,
        comebackcontext=opts.get("comebackcontext") or "parkedcallstimeout",
        comebackdialtime=ints["comebackdialtime"],
        parkedmusicclass=opts.get("parkedmusicclass", ""),
        parkext_exclusive=(opts.get("parkext_exclusive") or "no").lower() in _YES,
        parkinghints=(opts.get("parkinghints") or "no").lower() in _YES,
    )


def lots(cf: ConfFile | None) -> dict[str, Lot]:
    """The lots of a res_parking.conf (None: no file), by name, the `default` lot first when implicit."""
    out: dict[str, Lot] = {}
    for name in cf.names() if cf is not None else ():
        sec = cf.get(name)
        if name.lower() == "general" or (sec is not None and sec.template):
            continue
        out[name] = _lot(name, {k.lower(): option_value(v) for k, v in cf.resolved(name).items()})
    if DEFAULT_LOT not in out:
        out = {DEFAULT_LOT: Lot(DEFAULT_LOT, parkext=DEFAULT_PARKEXT), **out}
    return out


def context_names(cf: ConfFile | None) -> set[str]:
    """The contexts res_parking provides for this file (an extensions.conf may include them)."""
    return {lot.context for lot in lots(cf).values() if lot.parkext} | {PARK_DIAL_CONTEXT}


def contexts(all_lots: dict[str, Lot]) -> dict[str, Context]:
    """The dialplan res_parking registers for these lots (module docstring)."""
    out: dict[str, Context] = {PARK_DIAL_CONTEXT: Context(PARK_DIAL_CONTEXT)}
    for lot in all_lots.values():
        if not lot.parkext:
            continue
        ctx = out.setdefault(lot.context, Context(lot.context))
        taken = {e.exten for e in ctx.extensions}
        if lot.parkext not in taken:
            args = lot.name if lot.parkext_exclusive else ""
            ctx.extensions.append(Extension(lot.parkext, None, [Step(1, None, "Park", args)]))
        for space in lot.spaces():
            if str(space) in taken:
                continue
            ext = Extension(str(space), None, [Step(1, None, "ParkedCall", f"{lot.name},{space}")])
            if lot.parkinghints:
                ext.hint = f"park:{space}@{lot.context}"
            ctx.extensions.append(ext)
    return out


def flat(dial_string: str) -> str:
    """PARKER_FLAT: the parker's dial string with every '/' as '_'."""
    return dial_string.replace("/", "_")


def dial_string(channel_name: str) -> str:
    """ast_channel_name_to_dial_string: `PJSIP/alice-0000001f` -> `PJSIP/alice`."""
    base, dash, _ = channel_name.rpartition("-")
    return base if dash and "/" in base else channel_name
