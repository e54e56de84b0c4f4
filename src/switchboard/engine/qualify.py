"""Qualify (Asterisk's res_pjsip qualify): aors with `qualify_frequency` > 0 get an OPTIONS to
each registered contact every qualify_frequency seconds. A contact that answers (any response)
within `qualify_timeout` is Reachable with its round-trip time; otherwise Unreachable. Contacts
of aors without qualify stay Unknown. One OPTIONS per contact at a time (no overlap)."""

from __future__ import annotations

import asyncio
import logging
import time

from switchboard import events
from switchboard.domain.cluster import NODE_ID
from switchboard.engine.runtime import Pbx
from switchboard.sip.engine import USER_AGENT, SipEngine
from switchboard.sip.message import Message, new_tag

log = logging.getLogger("switchboard.qualify")


def options_request(uri: str, from_host: str) -> Message:
    call_id = f"{new_tag()}{new_tag()}@{from_host}"
    return Message(
        method="OPTIONS",
        uri=uri,
        headers=[
            ("Max-Forwards", "70"),
            ("From", f"<sip:qualify@{from_host}>;tag={new_tag()}"),
            ("To", f"<{uri}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 OPTIONS"),
            ("User-Agent", USER_AGENT),
            ("Accept", "application/sdp"),
        ],
    )


def _target(binding) -> tuple[str, int]:
    """Where the contact is reached: the address its REGISTER came from (NAT-safe)."""
    host, _, port = binding.via_address.rpartition(":")
    return host, int(port or 5060)


class Qualifier:
    def __init__(self, pbx: Pbx, engine: SipEngine, *, tick: float = 1.0):
        self.pbx, self.engine, self.tick = pbx, engine, tick
        self._busy: set[tuple[str, str]] = set()

    async def probe(self, binding, timeout: float) -> None:
        key = (binding.aor, binding.uri)
        self._busy.add(key)
        try:
            host, port = _target(binding)
            req = options_request(binding.uri, self.engine.local_host_for(host))
            started = time.perf_counter()
            resp = await self.engine.request(req, host, port, transport=binding.transport, timeout=timeout)
            before = binding.status
            if resp is not None:
                binding.status, binding.rtt_usec = "Reachable", int((time.perf_counter() - started) * 1e6)
            else:
                binding.status, binding.rtt_usec = "Unreachable", None
            events.publish(  # every qualify result (the rtt moves), not only status changes
                "contact.status",
                {
                    "aor": binding.aor,
                    "contact": binding.uri,
                    "endpoint": binding.endpoint,
                    "status": binding.status,
                    "previous": before,
                    "rtt_usec": binding.rtt_usec,
                    "node": NODE_ID,  # the other nodes take the status (engine/cluster.py)
                },
            )
            if before != binding.status:
                log.info("contact %s of %s is %s", binding.uri, binding.aor, binding.status)
                self.pbx.view_cache.clear()
        finally:
            self._busy.discard(key)

    async def run(self) -> None:
        while True:
            try:
                self.round()
            except Exception:
                log.exception("qualify round failed")
            await asyncio.sleep(self.tick)

    def round(self) -> None:
        cfg = self.pbx.pjsip()
        if cfg is None:
            return
        now = time.monotonic()
        for aor in list(self.pbx.contacts):
            if aor not in cfg.aors:
                continue
            policy = cfg.aor_policy(aor)
            if policy.qualify_frequency <= 0:
                continue
            for b in self.pbx.contacts_of(aor):
                if (aor, b.uri) in self._busy or b.next_qualify > now:
                    continue
                b.next_qualify = now + policy.qualify_frequency
                asyncio.ensure_future(self.probe(b, policy.qualify_timeout))
