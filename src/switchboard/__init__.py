"""Switchboard: an open VoIP operations platform (SIP engine + management service)."""

__version__ = "0.1.0"
