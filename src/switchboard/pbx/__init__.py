"""PBX configuration models (Asterisk-compatible objects)."""
