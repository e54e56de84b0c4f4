"""SIP: a sans-I/O core (message parsing and building) and the asyncio transports.

Its per-datagram modules may run compiled by mypyc: see switchboard/compiled.py.
"""
