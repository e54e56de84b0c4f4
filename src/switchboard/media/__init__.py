"""The media engine: RTP relay, G.711, RFC 4733 DTMF, playback, hold music, recording, RTCP.

It runs as its own process (`switchboard media`, see `server.py`), driven through the control
protocol documented in `protocol.py` and docs/media-protocol.md; `process.py` starts one.
"""
