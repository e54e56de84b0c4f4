"""The event bus (DESIGN.md, "Events"): `publish(type, data, owner=None)` at each state change a
live view shows; the SSE/WebSocket routes (api/ui/events.py) read it. One bus per process
(`bus`); app.py connects it to the other nodes through PostgreSQL (pgbridge.py) when the
database is PostgreSQL. See bus.py for numbering, history, gaps and who sees what."""

from __future__ import annotations

import secrets
import weakref
from typing import Any

from sqlalchemy import event as sa_event

from switchboard.events.bus import Event, EventBus, Subscription, Viewer

bus = EventBus()
# this process's name in the cluster: the `node` of the events that change engine state (the other
# nodes apply them, engine/cluster.py), the holder of its leases (domain/cluster.py)
NODE_ID = secrets.token_hex(6)

# sync SQLAlchemy connection -> events waiting for its transaction's commit
_pending: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_hooked: weakref.WeakSet = weakref.WeakSet()


def publish(type: str, data: dict[str, Any], owner: int | None = None) -> None:
    """Publish on the process's bus (sync, never blocks, never raises)."""
    bus.publish(type, data, owner)


def publish_after_commit(conn: Any, type: str, data: dict[str, Any], owner: int | None = None) -> None:
    """Publish once `conn`'s transaction commits (dropped when it rolls back): for changes the
    domain writes inside a request's transaction. `conn` is the store's connection (an
    AsyncConnection, or the SQLite loop connection); without a transaction to follow, at once."""
    sync = getattr(conn, "sync_connection", None) or getattr(conn, "_conn", None)
    if sync is None or not hasattr(sync, "dispatch"):
        publish(type, data, owner)
        return
    if sync not in _hooked:
        _hooked.add(sync)
        sa_event.listen(sync, "commit", _committed)
        sa_event.listen(sync, "rollback", _rolled_back)
    _pending.setdefault(sync, []).append((type, data, owner))


def _committed(sync) -> None:
    for type_, data, owner in _pending.pop(sync, ()):
        publish(type_, data, owner)


def _rolled_back(sync) -> None:
    _pending.pop(sync, None)


__all__ = ["NODE_ID", "Event", "EventBus", "Subscription", "Viewer", "bus", "publish", "publish_after_commit"]
