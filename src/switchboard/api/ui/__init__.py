"""The web dashboard (`/ui`, dashboard.py), the offline Swagger page (`/docs`, docs.py) and the live
event stream (events.py: /events/stream, /events/ws)."""
