"""The web dashboard (`/ui`, dashboard.py), the offline Swagger page (`/docs`, docs.py) and the
event stream routes."""
