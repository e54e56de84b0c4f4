"""The carrier adapter: the one place in switchboard that knows the carrier API's wire format.

`CarrierClient(api_url, api_key)` talks to a carrier (MVNO) HTTP API such as
`switchboard carrier-sandbox` (see `switchboard.carrier.sandbox` for the API it implements) and
answers in switchboard's own normalised form:

- `subscription(mdn=|esn=|sim=, carrier=)` -> the subscription record, or None when the carrier has
  no such subscription;
- `usage(month)` -> an async iterator of pages of `(mdn, bytes)` for one month, following cursors;
- `port_messages(after)` -> the port-in messages after a cursor (following paging) and the cursor
  to keep for next time.

Timeouts and retries
--------------------
Every request is a GET (all idempotent). One attempt may take at most `timeout` seconds in all
(connect, send, wait and read the body: one deadline, not one per phase). A failed attempt is
retried, up to `retries` times, when it could not connect, the connection broke, it timed out, or
the carrier answered 502, 503 or 504; before retry n the client pauses
`min(backoff * 2**(n-1), 2 s)` times a random factor in [0.5, 1]. Nothing else is retried: 401/403
(`CarrierRejected`), other 4xx and 5xx, and a body that is not the expected JSON fail at once.
So one request takes at most

    timeout * (retries + 1) + sum(min(backoff * 2**(n-1), 2) for n in 1..retries)

seconds: 5 * 3 + 0.2 + 0.4 = 15.6 s with the defaults (timeout 5 s, retries 2, backoff 0.2 s).
Paged calls (`usage`, `port_messages`) apply that bound to each page's request.

Failures
--------
All are `CarrierError` subclasses whose `.status` is the HTTP status the kazoo dialect answers:
`CarrierUnavailable` (502: unreachable, connection reset, 5xx after retries, a response that is not
the expected JSON, a misconfigured `api_url`), `CarrierTimeout` (504: the last attempt timed out),
`CarrierRejected` (502: the carrier refused our credentials), `CursorRefused` (502: a port message
request that named a cursor was refused with an unexpected 4xx: the carrier's log was reset or the
cursor is not its own; the poller reads the log again from the start). Any other refusal of the
request (an unexpected 4xx) is a plain `CarrierError` (502). Messages name the carrier's URL (without
user info, query or fragment) and never the API key, which is sent only in the `Authorization`
header and never logged (user info in `api_url` is dropped, so it cannot replace the key).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from switchboard import __version__
from switchboard.domain.validation import e164

log = logging.getLogger("switchboard.carrier")

RETRY_STATUSES = frozenset({502, 503, 504})
MAX_BACKOFF = 2.0  # seconds: the longest single pause between two attempts
MAX_USAGE_PAGE = 10_000  # the carrier API's largest `limit` for usage pages
PORT_PAGE_SIZE = 1000  # port messages asked for per request (the carrier API's maximum)
_MONTH = re.compile(r"^\d{4}(0[1-9]|1[0-2])$")


class CarrierError(Exception):
    """A carrier API call failed. `.status` is the HTTP status the kazoo dialect answers."""

    status = 502


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached, broke the connection, failed with 5xx (after retries) or
    answered something that is not its API's JSON."""

    status = 502


class CarrierTimeout(CarrierError):
    """The carrier did not answer in time (after retries)."""

    status = 504


class CarrierRejected(CarrierError):
    """The carrier refused our credentials (401/403): the cluster's `api_key` is wrong."""

    status = 502


class CursorRefused(CarrierError):
    """The carrier refused a port message request that named a cursor (an unexpected 4xx, such as
    the sandbox's 400 for a cursor beyond its log): the cursor is no longer valid there."""

    status = 502


normalize_mdn = e164  # an MDN in E.164, or None when the carrier sent no phone number


def _optional_str(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _optional_int(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is not an integer")
    return value


class CarrierClient:
    """A client of one carrier API (`api_url`, `api_key`): one shared `httpx.AsyncClient`, closed by
    `aclose()` (or `async with`). Safe to share between concurrent requests of one event loop.

    `timeout` bounds each attempt (seconds), `retries` is how many times a failed idempotent
    request is tried again, `backoff` the first pause between attempts (doubling, at most 2 s);
    see the module docstring for the exact bound. `transport` replaces the network (tests pass an
    `httpx.ASGITransport` or `httpx.MockTransport`)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: float = 0.2,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        if backoff < 0:
            raise ValueError("backoff must be 0 or more seconds")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._config_error: str | None = None
        base = self._base_url(api_url)
        if base is None:
            self._config_error = "the carrier api_url is not an http:// or https:// URL"
            base = httpx.URL("http://carrier.invalid/")
        # user info would replace the bearer key with HTTP Basic; query and fragment have no place
        base = base.copy_with(query=None, fragment=None, username=None, password=None)
        self.where = str(base).rstrip("/")
        if not isinstance(api_key, str) or not api_key:
            self._config_error = self._config_error or "the carrier api_key is empty"
            api_key = ""
        headers = {"Accept": "application/json", "User-Agent": f"switchboard/{__version__} carrier-adapter"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base,
            headers=headers,
            timeout=httpx.Timeout(self.timeout),
            transport=transport,
            follow_redirects=False,
        )

    @staticmethod
    def _base_url(api_url: Any) -> httpx.URL | None:
        if not isinstance(api_url, str) or not api_url.strip():
            return None
        try:
            url = httpx.URL(api_url.strip())
        except (httpx.InvalidURL, TypeError, ValueError):
            return None
        if url.scheme not in ("http", "https") or not url.host:
            return None
        return url

    def __repr__(self) -> str:
        return f"CarrierClient({self.where!r}, timeout={self.timeout:g}, retries={self.retries})"

    async def __aenter__(self) -> CarrierClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (the client cannot be used afterwards)."""
        await self._http.aclose()

    # ---- subscriptions ---------------------------------------------------------------------------
    async def subscription(
        self,
        *,
        mdn: str | None = None,
        esn: str | None = None,
        sim: str | None = None,
        carrier: str | None = None,
    ) -> dict | None:
        """The carrier's record in OUR normalised form, or None when the carrier has no such
        subscription:
        {"esn","mdn","sim","imsi","plan","features":[...],"carrier","carrier_data":{"msid","csa"},
         "activation_date": int|None,"suspended": bool,"model": {"name","number","manufacturer"}|None}
        (esn, sim, imsi, plan, msid and csa may be None; `mdn` is E.164).

        One key is looked up: `mdn` over `esn` over `sim` (as KAZOO gives the MDN precedence).
        `carrier` asks a multi-carrier MVNO for that carrier's subscription only; the record's
        `carrier` is the carrier's answer, else the one asked for. ValueError when no key is
        given or `mdn` is not a phone number."""
        params: dict[str, str] = {}
        if mdn is not None:
            normal = normalize_mdn(mdn)
            if normal is None:
                raise ValueError("mdn is not a phone number")
            params["mdn"] = normal
        elif esn is not None and isinstance(esn, str) and esn.strip():
            params["esn"] = esn.strip()
        elif sim is not None and isinstance(sim, str) and sim.strip():
            params["sim"] = sim.strip()
        else:
            raise ValueError("one of mdn, esn or sim is required")
        if carrier:
            params["carrier"] = carrier
        response = await self._get("v1/subscriptions", params)
        body = self._body(response, "subscriptions lookup", not_found_ok=True)
        if body is None:
            return None
        try:
            return self._subscription(body.get("subscription"), carrier)
        except ValueError as e:
            raise CarrierUnavailable(f"the carrier API at {self.where} sent an invalid subscription: {e}") from None

    @staticmethod
    def _subscription(raw: Any, asked_carrier: str | None) -> dict:
        if not isinstance(raw, dict):
            raise ValueError("no subscription object")
        mdn = normalize_mdn(raw.get("mdn"))
        if mdn is None:
            raise ValueError("mdn is not a phone number")
        features = raw.get("features")
        if features is None:
            features = []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("features is not a list of strings")
        suspended = raw.get("suspended", False)
        if not isinstance(suspended, bool):
            raise ValueError("suspended is not a boolean")
        model = raw.get("model")
        if model is not None:
            if not isinstance(model, dict):
                raise ValueError("model is not an object")
            model = {k: _optional_str(model, k) for k in ("name", "number", "manufacturer")}
            if not any(model.values()):
                model = None
        return {
            "esn": _optional_str(raw, "esn"),
            "mdn": mdn,
            "sim": _optional_str(raw, "sim"),
            "imsi": _optional_str(raw, "imsi"),
            "plan": _optional_str(raw, "plan"),
            "features": list(features),
            "carrier": _optional_str(raw, "carrier") or asked_carrier or None,
            "carrier_data": {"msid": _optional_str(raw, "msid"), "csa": _optional_str(raw, "csa")},
            "activation_date": _optional_int(raw.get("activation_date"), "activation_date"),
            "suspended": suspended,
            "model": model,
        }

    # ---- usage -----------------------------------------------------------------------------------
    def usage(self, month: str, *, page_size: int = 1000) -> AsyncIterator[list[tuple[str, int]]]:
        """Async iterator of pages of (mdn, bytes) for month "YYYYMM" (follows cursors).

        Pages come in the carrier's order and are never empty: a month the carrier has no usage
        for yields no page. MDNs are E.164; a row whose MDN is not a phone number or whose bytes
        is not a non-negative integer is dropped (and logged). `page_size` is 1 to 10000.
        ValueError (at once) for a malformed month or page size."""
        if not isinstance(month, str) or not _MONTH.match(month):
            raise ValueError("month must be YYYYMM")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_USAGE_PAGE:
            raise ValueError(f"page_size must be 1 to {MAX_USAGE_PAGE}")
        return self._usage_pages(month, page_size)

    async def _usage_pages(self, month: str, page_size: int) -> AsyncIterator[list[tuple[str, int]]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"limit": str(page_size)}
            if cursor is not None:
                params["cursor"] = cursor
            body = self._body(await self._get(f"v1/usage/{month}", params), "usage")
            items, next_cursor = body.get("items"), body.get("next_cursor")
            if (
                body.get("month", month) != month
                or not isinstance(items, list)
                or not (next_cursor is None or (isinstance(next_cursor, str) and next_cursor))
            ):
                raise CarrierUnavailable(f"the carrier API at {self.where} sent an invalid usage page")
            page: list[tuple[str, int]] = []
            dropped = 0
            for item in items:
                mdn = normalize_mdn(item.get("mdn")) if isinstance(item, dict) else None
                used = item.get("bytes") if isinstance(item, dict) else None
                if mdn is None or isinstance(used, bool) or not isinstance(used, int) or used < 0:
                    dropped += 1
                    continue
                page.append((mdn, used))
            if dropped:
                log.warning("carrier %s: dropped %d malformed usage rows of %s", self.where, dropped, month)
            if page:
                yield page
            if next_cursor is None:
                return
            if next_cursor in seen:
                raise CarrierUnavailable(f"the carrier API at {self.where} repeated a usage cursor")
            seen.add(next_cursor)
            cursor = next_cursor

    # ---- port messages ---------------------------------------------------------------------------
    async def port_messages(self, after: str | None) -> tuple[list[dict], str | None]:
        """All messages after the cursor (follows paging), and the cursor to use next time
        (unchanged when nothing new). Each message normalised to
        {"port_id","mdn","esn","code","message","timestamp"} (mdn E.164 or None, code lower case,
        timestamp in Gregorian seconds or None), in the carrier's order. `after=None` starts at the
        beginning of the carrier's log.

        A message without a string `port_id` and `code` is dropped (and logged) but the cursor still
        moves past it, so one bad message cannot stall the polling."""
        if after is not None and (not isinstance(after, str) or not after):
            raise ValueError("after must be a cursor string or None")
        cursor = after
        out: list[dict] = []
        dropped = 0
        while True:
            params = {"limit": str(PORT_PAGE_SIZE)}
            if cursor is not None:
                params["after"] = cursor
            refused = CursorRefused if cursor is not None else CarrierError
            body = self._body(await self._get("v1/port_messages", params), "port messages", refused=refused)
            messages, next_cursor, more = body.get("messages"), body.get("next_cursor"), body.get("has_more", False)
            if (
                not isinstance(messages, list)
                or not isinstance(more, bool)
                or not (next_cursor is None or (isinstance(next_cursor, str) and next_cursor))
            ):
                raise CarrierUnavailable(f"the carrier API at {self.where} sent an invalid port message page")
            for raw in messages:
                message = self._port_message(raw)
                if message is None:
                    dropped += 1
                else:
                    out.append(message)
            if messages and next_cursor is None:
                raise CarrierUnavailable(f"the carrier API at {self.where} sent port messages without a cursor")
            advanced = next_cursor is not None and next_cursor != cursor
            if advanced:
                cursor = next_cursor
            if not more:
                break
            if not advanced:
                raise CarrierUnavailable(f"the carrier API at {self.where} paged port messages without moving on")
        if dropped:
            log.warning("carrier %s: dropped %d malformed port messages", self.where, dropped)
        if not out and not dropped:
            return [], after
        return out, cursor

    @staticmethod
    def _port_message(raw: Any) -> dict | None:
        if not isinstance(raw, dict):
            return None
        port_id, code = raw.get("port_id"), raw.get("code")
        if not isinstance(port_id, str) or not port_id.strip() or not isinstance(code, str) or not code.strip():
            return None
        esn, message, stamp = raw.get("esn"), raw.get("message"), raw.get("timestamp")
        return {
            "port_id": port_id.strip(),
            "mdn": normalize_mdn(raw.get("mdn")),
            "esn": esn if isinstance(esn, str) and esn else None,
            "code": code.strip().lower(),
            "message": message if isinstance(message, str) and message else None,
            "timestamp": stamp if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp >= 0 else None,
        }

    # ---- HTTP ------------------------------------------------------------------------------------
    def _pause(self, retry: int) -> float:
        return min(self.backoff * 2 ** (retry - 1), MAX_BACKOFF) * random.uniform(0.5, 1.0)

    async def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        """GET with the per-attempt deadline and the retries of the module docstring."""
        if self._config_error is not None:
            raise CarrierUnavailable(self._config_error)
        attempts = self.retries + 1
        failure: tuple[type[CarrierError], str] = (CarrierUnavailable, "no attempt made")
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                pause = self._pause(attempt - 1)
                log.info(
                    "carrier %s: %s on %s; retry %d of %d in %.2f s",
                    self.where,
                    failure[1],
                    path,
                    attempt - 1,
                    self.retries,
                    pause,
                )
                await asyncio.sleep(pause)
            try:
                async with asyncio.timeout(self.timeout):
                    response = await self._http.get(path, params=params)
            except (httpx.TimeoutException, TimeoutError):
                failure = (CarrierTimeout, f"no answer within {self.timeout:g} s")
                continue
            except httpx.TransportError as e:
                failure = (CarrierUnavailable, f"unreachable ({str(e) or e.__class__.__name__})")
                continue
            if response.status_code in RETRY_STATUSES:
                failure = (CarrierUnavailable, f"HTTP {response.status_code} {self._error_text(response)}")
                continue
            return response
        kind, reason = failure
        tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
        log.warning("carrier %s: %s on %s after %s", self.where, reason, path, tries)
        raise kind(f"the carrier API at {self.where} failed: {reason} ({tries})")

    def _body(
        self,
        response: httpx.Response,
        what: str,
        *,
        not_found_ok: bool = False,
        refused: type[CarrierError] = CarrierError,
    ) -> dict | None:
        """The JSON object of a 200 answer; None for the carrier's own 404 "not_found" when
        `not_found_ok`; else the CarrierError the status means (`refused` for an unexpected 4xx)."""
        status = response.status_code
        if status in (401, 403):
            raise CarrierRejected(
                f"the carrier API at {self.where} refused our credentials (HTTP {status}): check the cluster's api_key"
            )
        if status == 404:
            if not_found_ok and self._error_code(response) == "not_found":
                return None
            raise CarrierUnavailable(
                f"the carrier API at {self.where} has no {what} endpoint (HTTP 404): check the cluster's api_url"
            )
        if status >= 500:
            raise CarrierUnavailable(
                f"the carrier API at {self.where} failed: HTTP {status} {self._error_text(response)}"
            )
        if status != 200:
            raise refused(
                f"the carrier API at {self.where} refused the {what} request: "
                f"HTTP {status} {self._error_text(response)}"
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise CarrierUnavailable(f"the carrier API at {self.where} answered the {what} request with no JSON object")
        return body

    @staticmethod
    def _error(response: httpx.Response) -> dict:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return {}
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}

    def _error_code(self, response: httpx.Response) -> str | None:
        code = self._error(response).get("code")
        return code if isinstance(code, str) else None

    def _error_text(self, response: httpx.Response) -> str:
        message = self._error(response).get("message")
        if isinstance(message, str) and message:
            return message[:200]
        return response.reason_phrase or "error"
