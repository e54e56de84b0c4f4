"""jade security: the authentication bans in force, and lifting them (admin). Not in jade's
document (Asterisk leaves bans to fail2ban, whose `status`/`unbanip` these mirror); under
`/admin/security` like the other admin views.

- `GET /admin/security/bans`: `result.list` of bans, each `{"protocol": "sip" | "http", "kind":
  "pair" | "source" | "account", "source", "account", "failures", "seconds_left", "tm_until"}`;
  `?protocol=sip|http` narrows it. For SIP the account is the REGISTER's aor (To user), for HTTP
  the login name (lowercase; matched without case when lifting). Unknown names are banned like
  known ones: a ban tells nothing about which accounts exist.
- `DELETE /admin/security/bans?protocol=&source=&account=`: lifts the bans naming that source
  and/or account (both: that pair only; neither: every ban) and forgets their failures;
  `result.lifted` says how many bans went. Bans live in this node's memory (as fail2ban's do).
"""

from __future__ import annotations

import time

from fastapi import Request

from switchboard.api.jade import envelope
from switchboard.api.jade.routing import router
from switchboard.domain.errors import Invalid

api = router("security")
PROTOCOLS = ("http", "sip")


def _throttles(request: Request, protocol: str | None) -> list[tuple[str, object]]:
    services = request.app.state.services
    if protocol is not None and protocol not in PROTOCOLS:
        raise Invalid("protocol", "must be http or sip")
    pairs = [("http", services.identity.throttle), ("sip", services.sip_throttle)]
    return [(name, th) for name, th in pairs if protocol in (None, name)]


@api.get("/admin/security/bans", summary="Authentication bans in force (HTTP logins, SIP digest)")
async def bans_list(request: Request, protocol: str | None = None):
    now, wall = time.monotonic(), time.time()
    out = []
    for name, throttle in _throttles(request, protocol):
        for ban in throttle.bans():
            item = ban.as_dict(now, wall)
            until = item.pop("until")
            out.append({"protocol": name, **item, "tm_until": envelope.ts(int(until * 1e9))})
    return envelope.listing(out, stamped=True)


@api.delete("/admin/security/bans", summary="Lift bans by source and/or account")
async def bans_lift(
    request: Request, protocol: str | None = None, source: str | None = None, account: str | None = None
):
    lifted = 0
    for name, throttle in _throttles(request, protocol):
        # login names are matched without case; SIP user parts are case-sensitive (RFC 3261 §19.1.4)
        who = (account.lower() if name == "http" else account) if account else None
        lifted += throttle.lift(source=source or None, account=who)
        if throttle.shared is not None:  # SIP workers: every process holds the bans left
            await throttle.shared()
    return envelope.respond({"lifted": lifted})
