"""The probe-server software: log in to a Switchboard, pull the tests assigned to this server, run
them on schedule, and post the results in batches without losing or doubling any.

Flow:
- **login** (`POST /probe/v1/login`, HTTP Basic `server_id:agent_key`), retried with exponential
  back-off (0.5 s doubling to 30 s) while the Switchboard is down or refuses the key;
- **pull** (`GET /probe/v1/tests`, with `If-None-Match`: an unchanged list is a bodiless 304) every
  `poll_seconds` (2 s, so a new or changed test starts within seconds): a new test gets a runner, a changed one
  is restarted, one that disappeared (cancelled test, endpoint or server) is stopped. A failed pull
  keeps the tests that were running; a 401 (key rotated, server cancelled) stops them all and
  goes back to login;
- **schedule**: one task per test. The first run is at now + an offset derived from the test id
  (golden-ratio spread over min(interval, 30 s)), so a thousand tests do not fire
  together; the next run is the previous *scheduled* time + `interval_seconds` (no drift: the
  time a run takes never shifts the schedule; slots missed while the loop was blocked are skipped,
  not run in a burst). Each run is its own task, so a long run never delays the next slot;
- **spool**: every result gets a uuid4 and is appended as one JSON line to a segment file in
  `spool_dir` and fsync'd *before* anything is sent;
- **sender**: closes the current segment, posts the closed segments' results in batches of
  `max_batch` and deletes a segment only once every batch of it was answered 200. A Switchboard
  restart or a network loss only delays results (back-off 0.5 s to 30 s); a crash of the agent
  resends at most the segment in flight, which the uuid makes harmless. A batch refused as
  invalid (422: the server stores nothing and names the items at fault) is resent without those
  items; they go to `rejected-*.jsonl` (kept, logged) so one bad item never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from switchboard.probe import measure

log = logging.getLogger("switchboard.probe.agent")

BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
GOLDEN = 0.6180339887498949
SPREAD_SECONDS = 30.0  # first runs are spread over min(interval, this)


class Unauthorized(Exception):
    """The Switchboard refused the server id and key (wrong key, or the server is cancelled)."""


class RetryLater(Exception):
    """The Switchboard did not take a batch (5xx, 429, ...): keep it and try again after a back-off."""


@dataclass(frozen=True)
class TestSpec:
    __test__ = False  # not a pytest test class

    id: int
    host: str
    port: int
    codec: str
    num_tests: int
    interpacket_ms: int
    interval_seconds: int
    target_error: str | None = None

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> TestSpec:
        err = None
        try:
            host, port = measure.split_target(str(item["ip_address"]))
        except ValueError as e:
            host, port, err = str(item["ip_address"]), 0, str(e)
        return cls(
            int(item["id"]),
            host,
            port,
            str(item["codec"]),
            int(item["num_tests"]),
            int(item["interpacket_ms"]),
            max(1, int(item["interval_seconds"])),
            err,
        )


class Spool:
    """Results on disk until the Switchboard acknowledged them: JSON lines in segment files."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._current: Path | None = None
        self._lock = asyncio.Lock()
        self._seq = 0

    def _new_name(self) -> Path:
        self._seq += 1
        return self.dir / f"spool-{time.time_ns():020d}-{self._seq:06d}.jsonl"

    def _write(self, path: Path, line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def append(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        async with self._lock:
            if self._current is None:
                self._current = self._new_name()
            await asyncio.to_thread(self._write, self._current, line)

    async def rotate(self) -> list[Path]:
        """Close the segment being written; return every closed segment, oldest first."""
        async with self._lock:
            self._current = None
        return sorted(self.dir.glob("spool-*.jsonl"))

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        items = []
        for line in path.read_bytes().splitlines():
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:  # a torn last line from a crash mid-write: never acknowledged
                log.warning("skipping an unreadable line in %s", path.name)
                continue
            if isinstance(item, dict):
                items.append(item)
        return items

    def reject(self, items: list[dict[str, Any]]) -> None:
        path = self.dir / f"rejected-{time.time_ns():020d}.jsonl"
        self._write(path, b"".join(orjson.dumps(i) + b"\n" for i in items))

    def pending(self) -> int:
        return sum(len(self.read(p)) for p in sorted(self.dir.glob("spool-*.jsonl")))


class ProbeAgent:
    def __init__(
        self,
        url: str,
        server_id: int | str,
        key: str,
        *,
        spool_dir: str | Path,
        version: str,
        poll_seconds: float = 2,
        max_batch: int = 500,
        http_timeout: float = 15.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.server_id = str(server_id)
        self.key = key
        self.version = version
        self.poll_seconds = poll_seconds
        self.max_batch = max_batch
        self.http_timeout = http_timeout
        self.spool = Spool(Path(spool_dir))
        self.tests: dict[int, TestSpec] = {}
        self._etag: str | None = None  # of the last list pulled
        self._runners: dict[int, asyncio.Task] = {}
        self._runs: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self.logged_in = False
        self.results_made = 0
        self.results_sent = 0

    # ---- HTTP -------------------------------------------------------------------------------
    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        assert self._client is not None
        r = await self._client.request(method, path, json=body)
        if r.status_code == 401:
            raise Unauthorized(r.text)
        return r

    async def login(self) -> dict[str, Any]:
        """Log in, retrying with back-off until the Switchboard answers and accepts the key."""
        delay = BACKOFF_MIN
        while True:
            try:
                r = await self._call("POST", "/probe/v1/login", {"version": self.version})
                if r.status_code == 200:
                    info = r.json()
                    self.logged_in = True
                    log.info("logged in to %s as server %s (%s)", self.url, self.server_id, info.get("name"))
                    return info
                log.warning("login refused: %s %s", r.status_code, r.text[:200])
            except Unauthorized:
                log.error("login to %s refused: wrong server id or agent key, or the server is cancelled", self.url)
            except httpx.HTTPError as e:
                log.warning("login to %s failed (%s); retrying in %.1fs", self.url, e.__class__.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def pull(self) -> list[TestSpec] | None:
        """The tests to run; None when they are unchanged since the last pull (304)."""
        assert self._client is not None
        headers = {"If-None-Match": self._etag} if self._etag else {}
        r = await self._client.get("/probe/v1/tests", headers=headers)
        if r.status_code == 401:
            raise Unauthorized(r.text)
        if r.status_code == 304:
            return None
        r.raise_for_status()
        self._etag = r.headers.get("etag")
        specs = []
        for item in r.json().get("tests", []):
            try:
                specs.append(TestSpec.from_api(item))
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed test %r", item)
        return specs

    # ---- scheduling -------------------------------------------------------------------------
    def sync(self, specs: list[TestSpec]) -> None:
        """Run exactly these tests: start new ones, restart changed ones, stop the others."""
        wanted = {s.id: s for s in specs}
        for tid in list(self._runners):
            if wanted.get(tid) != self.tests.get(tid):
                self._runners.pop(tid).cancel()
                self.tests.pop(tid, None)
        for tid, spec in wanted.items():
            if tid not in self._runners:
                self.tests[tid] = spec
                self._runners[tid] = asyncio.ensure_future(self._schedule(spec))

    def first_offset(self, spec: TestSpec) -> float:
        window = max(1.0, min(spec.interval_seconds, SPREAD_SECONDS))
        return ((spec.id * GOLDEN) % 1.0) * window

    async def _schedule(self, spec: TestSpec) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() + self.first_offset(spec)
        while True:
            await asyncio.sleep(max(0.0, at - loop.time()))
            run = asyncio.ensure_future(self._run_once(spec))
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)
            at += spec.interval_seconds
            now = loop.time()
            if at < now:  # the loop was blocked past whole slots: skip them rather than burst
                at += ((now - at) // spec.interval_seconds + 1) * spec.interval_seconds

    async def _run_once(self, spec: TestSpec) -> None:
        try:
            if spec.target_error:
                result = measure.summarize([], spec.codec, error=spec.target_error)
            else:
                result = await measure.run_test(
                    spec.host, spec.port, count=spec.num_tests, interval_ms=spec.interpacket_ms, codec=spec.codec
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("test %d could not run", spec.id)
            return
        record = {
            "uuid": str(uuid.uuid4()),
            "voip_test_id": spec.id,
            "tested_at": result.tested_at.isoformat().replace("+00:00", "Z"),
            "packets_sent": result.packets_sent,
            "packets_received": result.packets_received,
            "loss_pct": result.loss_pct,
            "rtt_min_ms": result.rtt_min_ms,
            "rtt_avg_ms": result.rtt_avg_ms,
            "rtt_max_ms": result.rtt_max_ms,
            "jitter_ms": result.jitter_ms,
            "mos": result.mos,
            "error": result.error,
        }
        await asyncio.shield(self.spool.append(record))  # a result measured is a result kept
        self.results_made += 1
        log.info(
            "result %s of test %d spooled: loss %.1f%%, mos %.2f", record["uuid"], spec.id, result.loss_pct, result.mos
        )
        self._wake.set()

    # ---- sending ----------------------------------------------------------------------------
    async def _send_items(self, items: list[dict[str, Any]]) -> None:
        """Deliver a batch (setting aside what the Switchboard refuses as invalid); raise to retry later.

        A refused batch stores nothing; the 422 body's `error.refused` names the items at fault: they
        are set aside and the rest resent. Without that list the batch is retried item by item."""
        r = await self._call("POST", "/probe/v1/results", {"results": items})
        if r.status_code == 200:
            self.results_sent += len(items)
            return
        if r.status_code not in (400, 413, 422):
            raise RetryLater(f"results: HTTP {r.status_code}")
        refused: list[int] = []
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            refused = [i for i in r.json()["error"]["refused"] if isinstance(i, int) and 0 <= i < len(items)]
        if refused:
            bad = set(refused)
            self._reject([items[i] for i in sorted(bad)], r.status_code)
            rest = [it for i, it in enumerate(items) if i not in bad]
            if rest:
                await self._send_items(rest)
        elif len(items) > 1:
            for item in items:
                await self._send_items([item])
        else:
            self._reject(items, r.status_code)

    def _reject(self, items: list[dict[str, Any]], status: int) -> None:
        log.error(
            "%d result(s) refused (HTTP %d, e.g. a test cancelled meanwhile); kept in %s/rejected-*.jsonl",
            len(items),
            status,
            self.spool.dir,
        )
        self.spool.reject(items)

    async def flush(self) -> None:
        """Send every closed segment; a segment is deleted only after all its batches got a 200."""
        for path in await self.spool.rotate():
            items = self.spool.read(path)
            for i in range(0, len(items), self.max_batch):
                await self._send_items(items[i : i + self.max_batch])
            path.unlink(missing_ok=True)

    async def _sender(self) -> None:
        delay = BACKOFF_MIN
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)
            self._wake.clear()
            await asyncio.sleep(0.2)  # gather results finishing together into one batch
            try:
                await self.flush()
                delay = BACKOFF_MIN
            except (httpx.HTTPError, Unauthorized, RetryLater) as e:
                log.warning("sending results failed (%s); retrying in %.1fs", e.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                self._wake.set()

    # ---- main loop --------------------------------------------------------------------------
    async def run(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.url,
            auth=(self.server_id, self.key),
            timeout=self.http_timeout,
            headers={"User-Agent": f"switchboard-probe/{self.version}"},
        )
        sender = asyncio.ensure_future(self._sender())
        self._wake.set()  # results left in the spool by a previous run go first
        try:
            await self.login()
            while True:
                try:
                    specs = await self.pull()
                    if specs is not None:
                        self.sync(specs)
                except Unauthorized:
                    log.error("the Switchboard refused this server's key: stopping its tests")
                    self.logged_in = False
                    self._etag = None
                    self.sync([])
                    await self.login()
                    continue
                except (httpx.HTTPError, ValueError) as e:
                    log.warning(
                        "pulling tests failed (%s); keeping the %d current tests", e.__class__.__name__, len(self.tests)
                    )
                await asyncio.sleep(self.poll_seconds)
        finally:
            tasks = [sender, *self._runners.values(), *self._runs]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.aclose()
