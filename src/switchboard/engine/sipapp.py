"""What the engine does with a request: OPTIONS → 200 (Allow/Accept/Supported), REGISTER → the
registrar, anything else → 501 (INVITEs and in-dialog requests go to the call engine, engine/calls.py,
when it is attached to the SIP engine). Its `options_headers` tell the SIP engine that it answers every
OPTIONS outside a dialog alike, so the engine answers those itself, statelessly (sip/engine.py); its
`stateless_challenge` (the registrar's) lets the engine challenge a REGISTER without credentials statelessly too."""

from __future__ import annotations

from switchboard.engine.registrar import Registrar
from switchboard.sip.engine import ALLOW, CALL_ALLOW, USER_AGENT, Source, options_headers
from switchboard.sip.message import Message, response_to


class SipApp:
    def __init__(self, registrar: Registrar, *, calls: bool = False):
        self.registrar = registrar
        self.allow = CALL_ALLOW if calls else ALLOW  # with the call engine attached, INVITE & co. are ours
        self.options_headers = options_headers(self.allow)
        # a REGISTER without credentials: the registrar's challenge, sent statelessly by the SIP engine
        self.stateless_challenge = registrar.stateless_challenge
        self.challenge_headers = registrar.challenge_headers  # (its headers: the engine writes the 401 itself)

    def __call__(self, req: Message, source: Source):
        method = req.method
        if method == "OPTIONS":
            return response_to(req, 200, headers=self.options_headers)
        if method == "REGISTER":
            return self.registrar.handle(req, source)
        if method == "ACK":
            return None
        return response_to(req, 501, headers=[("Server", USER_AGENT), ("Allow", self.allow)])
