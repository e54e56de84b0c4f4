"""SIP: a sans-I/O core (message parsing and building) and the asyncio transports."""
