"""The mobile carrier (MVNO) side of the kazoo dialect.

- `switchboard.carrier.adapter`: `CarrierClient`, the HTTP client the kazoo dialect uses to ask a
  cluster's carrier API (`api_url` + `api_key`) for subscriptions, monthly data usage and port-in
  messages, with timeouts, bounded retries and failures as `CarrierError` subclasses. It is the
  only code in switchboard that knows the carrier's wire format.
- `switchboard.carrier.clients`: `CarrierClients`, one `CarrierClient` per cluster (its URL and
  key from the kazoo cluster document), replaced when the cluster's URL or key changes.
- `switchboard.carrier.poller`: `poll_ports` (one poll of a cluster's port messages, applied to
  the kazoo documents) and `run_port_poller`, the background loop `serve` runs.
- `switchboard.carrier.sandbox`: the stand-alone carrier service behind
  `switchboard carrier-sandbox --listen HOST:PORT --data FILE.json`, with its own HTTP API
  (documented in that module and in its OpenAPI at `/docs`), used by tests and by developers.

The adapter's names are re-exported here; the sandbox (FastAPI, uvicorn) is imported only by whoever
runs it.
"""

from switchboard.carrier.adapter import (
    CarrierClient,
    CarrierError,
    CarrierRejected,
    CarrierTimeout,
    CarrierUnavailable,
    CursorRefused,
)

__all__ = ["CarrierClient", "CarrierError", "CarrierRejected", "CarrierTimeout", "CarrierUnavailable", "CursorRefused"]
