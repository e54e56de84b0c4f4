"""Switchboard: an open VoIP operations platform (SIP engine + management service)."""

__version__ = "0.1.0"

# before anything else is imported: the mypyc build of the hot modules, or their sources (see compiled.py)
from switchboard import compiled as _compiled  # noqa: E402,F401
