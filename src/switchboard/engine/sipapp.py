"""What the engine does with a request: OPTIONS → 200 (Allow/Accept/Supported), REGISTER → the
registrar, anything else → 501 (INVITEs and in-dialog requests go to the call engine, engine/calls.py,
when it is attached to the SIP engine)."""

from __future__ import annotations

from switchboard.engine.registrar import Registrar
from switchboard.sip.engine import ALLOW, CALL_ALLOW, USER_AGENT, Source, options_ok
from switchboard.sip.message import Message, response_to


class SipApp:
    def __init__(self, registrar: Registrar, *, calls: bool = False):
        self.registrar = registrar
        self.allow = CALL_ALLOW if calls else ALLOW  # with the call engine attached, INVITE & co. are ours

    def __call__(self, req: Message, source: Source):
        method = req.method
        if method == "OPTIONS":
            return options_ok(req, self.allow)
        if method == "REGISTER":
            return self.registrar.handle(req, source)
        if method == "ACK":
            return None
        return response_to(req, 501, headers=[("Server", USER_AGENT), ("Allow", self.allow)])
