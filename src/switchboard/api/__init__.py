"""HTTP management service: one FastAPI app, one package per dialect."""
