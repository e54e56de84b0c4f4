"""What the engine does with a request: OPTIONS → 200 (Allow/Accept/Supported), REGISTER → the
registrar, anything else → 501 until call handling exists."""

from __future__ import annotations

from switchboard.engine.registrar import Registrar
from switchboard.sip.engine import ALLOW, USER_AGENT, Source, options_ok
from switchboard.sip.message import Message, response_to


class SipApp:
    def __init__(self, registrar: Registrar):
        self.registrar = registrar

    def __call__(self, req: Message, source: Source):
        method = req.method
        if method == "OPTIONS":
            return options_ok(req)
        if method == "REGISTER":
            return self.registrar.handle(req, source)
        if method == "ACK":
            return None
        return response_to(req, 501, headers=[("Server", USER_AGENT), ("Allow", ALLOW)])
