"""queues.conf rules (app_queue): what a queue section may hold. Pure: no I/O."""

from __future__ import annotations

from switchboard.asterisk.conf import ConfError, ConfFile, int_value, option_value

STRATEGIES = frozenset(
    {"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered"}
)


def check(cf: ConfFile) -> None:
    """Raise ConfError for a queue app_queue would not load: an unknown strategy, a non-integer number, a member
    that does not start with TECH/resource or whose penalty is not an integer."""
    for name in cf.names():
        if name == "general":
            continue
        opts = cf.resolved(name)
        strategy = option_value(opts.get("strategy", "ringall")).lower()
        if strategy not in STRATEGIES:
            raise ConfError(None, f"queue {name}: unknown strategy {strategy!r}")
        for key in ("maxlen", "weight", "servicelevel", "timeout", "retry", "wrapuptime"):
            if key in opts and option_value(opts[key]):
                int_value(option_value(opts[key]), f"queue {name}: {key}")
        for member in cf.multi(name, "member"):
            parts = [p.strip() for p in option_value(member).split(",")]
            if not parts[0] or "/" not in parts[0]:
                raise ConfError(None, f"queue {name}: member {member!r} must start with TECH/resource")
            if len(parts) > 1 and parts[1]:
                int_value(parts[1], f"queue {name}: member penalty")
