"""The engine's applications on the SIP core: module registry and loaded state, registrar, trunk
registration, qualify, the SIP dispatcher. Uses domain/ and asterisk/; above domain/."""
