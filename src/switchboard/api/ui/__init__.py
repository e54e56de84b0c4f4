"""The web dashboard and the live event stream (events.py: /events/stream, /events/ws)."""
