"""The KAZOO support model: accounts, and the JSON documents KAZOO keeps for a mobile carrier
(MVNO) business — devices, subscriptions, port-in requests, cluster documents and the routing
documents (customer clusters, carrier SBCs, media servers).

One module per concern: `documents` (the generic document store, ids, merge), `validation`
(KAZOO's rule-named errors, `Problems`, routing and usage policy checks), `accounts`, `clusters`
(with the routing documents), `devices`, `subscriptions`, `ports`. `KazooService` is composed of
their parts. Documents are stored as JSON in `kazoo_documents` (kind + id), with the lookup keys
(mdn, esn, sim, the device's SIP username) kept in columns beside the body. This package never
speaks to a carrier: `switchboard.carrier` (the adapter, the per-cluster clients and the port
poller) sits above it and calls this service.

Choices where the spec is silent (see also api/kazoo):
- **Ids**: generated ids are 32 hex (uuid4). Ids a client names in a path (clusters, customer
  clusters) are 1-64 characters of letters, digits, `_`, `-`, `.`.
- **MDNs** are stored in E.164: a 10-digit number is a North American one (+1 added), other digit
  strings get a `+`. `/phone_numbers/5550001111/device` and `/phone_numbers/+15550001111/device` name
  the same number.
- **Secrets**: a device's `voice.sip.password` and a cluster's `api_key` are encrypted at rest
  (SecretBox) and shown as "********", like every other secret of every dialect; "********" sent
  back keeps the stored value. (The spec's cluster example shows `{ENCRYPTED_API_KEY}`: a
  placeholder, which we fill with the mask rather than ciphertext, so that nothing derived from the
  key leaves the server.)
- **Timestamps** shown in documents (`activation_date`, `last_manual_update`, `pvt_created`,
  `pvt_modified`) are KAZOO's Gregorian seconds (seconds since 0000-01-01).
- **PATCH**: routing documents are deep-merged (the spec's customer-cluster example keeps the
  sibling zones); device and subscription PATCHes take the spec's `recursive` flag (default
  false): false merges top-level keys only, true merges deeply. `null` deletes a key either way.
- **One device per MDN** and per ESN, one subscription per MDN/ESN/SIM (across accounts): an
  import of a number that is already in the database is 409.
"""

from __future__ import annotations

from switchboard.domain import repos
from switchboard.domain.kazoo.accounts import Accounts
from switchboard.domain.kazoo.clusters import Clusters
from switchboard.domain.kazoo.devices import DEFAULT_CAPS, Devices
from switchboard.domain.kazoo.documents import (
    CARRIER_SBC,
    CLUSTER,
    CUSTOMER_CLUSTER,
    DEVICE,
    GREGORIAN_OFFSET,
    MEDIA_SERVER,
    PORT,
    PORT_STATES,
    ROUTING_KINDS,
    SUBSCRIPTION,
    Doc,
    check_id,
    find_docs,
    get_doc,
    gregorian,
    merge,
    new_id,
    public,
)
from switchboard.domain.kazoo.ports import Ports
from switchboard.domain.kazoo.subscriptions import Subscriptions
from switchboard.domain.kazoo.validation import (
    MAX_MONTHS,
    CarrierMissing,
    KazooInvalid,
    Problems,
    invalid,
    month_range,
    normalize_mdn,
    validate_routing,
)
from switchboard.domain.security import MASK, SecretBox


class KazooService(Accounts, Clusters, Devices, Subscriptions, Ports):
    """Everything the kazoo dialect does, on a connection the caller's transaction owns (the
    methods of its parts call each other through `self`)."""

    def __init__(self, box: SecretBox):
        self.box = box
        self._lists = repos.Reads()  # lists kept while the database is unchanged


__all__ = [
    "CARRIER_SBC",
    "CLUSTER",
    "CUSTOMER_CLUSTER",
    "DEFAULT_CAPS",
    "DEVICE",
    "GREGORIAN_OFFSET",
    "MASK",
    "MAX_MONTHS",
    "MEDIA_SERVER",
    "PORT",
    "PORT_STATES",
    "ROUTING_KINDS",
    "SUBSCRIPTION",
    "CarrierMissing",
    "Doc",
    "KazooInvalid",
    "KazooService",
    "Problems",
    "check_id",
    "find_docs",
    "get_doc",
    "gregorian",
    "invalid",
    "merge",
    "month_range",
    "new_id",
    "normalize_mdn",
    "public",
    "validate_routing",
]
