"""The event bus (DESIGN.md, "Events"): `publish(type, data, owner=None)` at each state change a
live view shows; the SSE/WebSocket routes (api/ui/events.py) read it. One bus per process
(`bus`); app.py connects it to the other nodes through PostgreSQL (pgbridge.py) when the
database is PostgreSQL. See bus.py for numbering, history, gaps and who sees what."""

from __future__ import annotations

from typing import Any

from switchboard.events.bus import Event, EventBus, Subscription, Viewer

bus = EventBus()


def publish(type: str, data: dict[str, Any], owner: int | None = None) -> None:
    """Publish on the process's bus (sync, never blocks, never raises)."""
    bus.publish(type, data, owner)


__all__ = ["Event", "EventBus", "Subscription", "Viewer", "bus", "publish"]
