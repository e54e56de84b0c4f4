"""The real `switchboard carrier-sandbox` process, talked to with the carrier adapter over TCP:
lookups, paging a month of a few thousand MDNs, port message polling with cursors, faults,
`--persist` across a restart, a clean SIGTERM, bad arguments, and the process being killed
(-> CarrierUnavailable)."""

from __future__ import annotations

import itertools
import json
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard.carrier import CarrierClient, CarrierRejected, CarrierTimeout, CarrierUnavailable
from tests.conftest import BIN, free_port, reported_port
from tests.sip_peers import stop_process, wait_for

SEED = json.loads((Path(__file__).parent.parent / "carrier_data.json").read_text())
KEY = "e2e-" + secrets.token_hex(12)
BIG_MONTH = "202001"
BIG_USAGE = {f"+1666{n:07d}": (n * 7919) % 5_000_000_000 for n in range(3_500)}


@dataclass
class Sandbox:
    proc: subprocess.Popen
    url: str
    data_file: Path
    log_file: Path

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        r = httpx.request(
            method, self.url + "/v1/admin" + path, headers={"Authorization": f"Bearer {KEY}"}, timeout=10, **kw
        )
        assert r.status_code < 300, r.text
        return r

    def client(self, **kw) -> CarrierClient:
        kw.setdefault("backoff", 0.05)
        return CarrierClient(self.url, KEY, **kw)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def write_data(path: Path, **changes) -> Path:
    doc = {**json.loads(json.dumps(SEED)), "api_key": KEY, **changes}
    doc["usage"] = {**doc["usage"], BIG_MONTH: BIG_USAGE}
    path.write_text(json.dumps(doc))
    return path


_starts = itertools.count(1)


def start(data_file: Path, *extra: str) -> Sandbox:
    log_file = data_file.with_suffix(f".{next(_starts)}.log")
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [
                str(BIN / "switchboard"),
                "carrier-sandbox",
                "--listen",
                "127.0.0.1:0",  # it binds a free port itself and says which
                "--data",
                str(data_file),
                "--log-level",
                "warning",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = reported_port(proc, log_file, 0, "carrier-sandbox")
    except BaseException:
        stop_process(proc, signal.SIGKILL)
        raise
    box = Sandbox(proc, f"http://127.0.0.1:{port}", data_file, log_file)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"carrier-sandbox exited with {proc.returncode}:\n{box.log()}")
        try:
            return httpx.get(box.url + "/v1/usage", headers={"Authorization": f"Bearer {KEY}"}, timeout=1).is_success
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 20, what="carrier-sandbox up")
    except BaseException:
        stop_process(proc, signal.SIGKILL)
        raise
    return box


def stop_cleanly(box: Sandbox) -> None:
    code = stop_process(box.proc)
    log = box.log()
    assert code == 0, f"carrier-sandbox did not stop cleanly on SIGTERM ({code}):\n{log}"
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    box = start(write_data(tmp_path_factory.mktemp("carrier") / "carrier.json"))
    yield box
    stop_cleanly(box)


@pytest.fixture
def own_sandbox(tmp_path):
    """A sandbox process of the test's own (to restart or kill); stopped afterwards."""
    boxes: list[Sandbox] = []

    def make(*extra: str) -> Sandbox:
        data_file = tmp_path / "carrier.json"
        if not data_file.exists():
            write_data(data_file)
        boxes.append(start(data_file, *extra))
        return boxes[-1]

    yield make
    for box in boxes:
        stop_process(box.proc, signal.SIGKILL)


async def test_lookups(sandbox):
    async with sandbox.client() as c:
        device = await c.subscription(mdn="555-000-1111")
        assert device["model"] == {
            "name": "SAMSUNG L300 HANDSET KIT",
            "number": "SPHL300KTS",
            "manufacturer": "SAMSUNG",
        }
        assert device["carrier_data"] == {"msid": "012345678901234", "csa": "SFRSFR415"}
        assert device["plan"] == "260PLAN21" and device["features"] == ["international", "sip", "mms", "lte"]
        assert device["sim"] == "01234567890123456789" and device["imsi"] == "9876543210"
        looked_up = await c.subscription(esn="A0000041563752", carrier="sprint")
        assert looked_up == {
            "esn": "A0000041563752",
            "mdn": "+14157487153",
            "sim": None,
            "imsi": None,
            "plan": "260PLAN1",
            "features": ["international", "sip", "mms", "tethering"],
            "carrier": "sprint",
            "carrier_data": {"msid": "000004156375241", "csa": "SFRSFR415"},
            "activation_date": 63746871056,
            "suspended": False,
            "model": None,
        }
        assert (await c.subscription(sim="89014103211118510720"))["carrier"] == "boost"
        assert await c.subscription(mdn="+15559990000") is None
        assert await c.subscription(mdn="+15550009999", carrier="sprint") is None
    async with CarrierClient(sandbox.url, "not-the-key") as wrong:
        with pytest.raises(CarrierRejected):
            await wrong.subscription(mdn="+15550001111")


async def test_usage_paging_of_thousands_of_mdns(sandbox):
    async with sandbox.client() as c:
        pages = [page async for page in c.usage(BIG_MONTH, page_size=1000)]
        assert [len(p) for p in pages] == [1000, 1000, 1000, 500]
        rows = [row for page in pages for row in page]
        assert rows == sorted(BIG_USAGE.items())
        small = [page async for page in c.usage(BIG_MONTH, page_size=10_000)]
        assert len(small) == 1 and small[0] == rows
        spec = [row async for page in c.usage("201701", page_size=4) for row in page]
        assert sum(b for _, b in spec) == 5468097625 and len(spec) == 9
        assert [page async for page in c.usage("199001")] == []


async def test_port_message_polling(sandbox):
    async with sandbox.client() as c:
        first, cursor = await c.port_messages(None)
        assert [(m["port_id"], m["code"]) for m in first] == [
            ("port-7f3a91c2", "submitted"),
            ("port-7f3a91c2", "pending"),
            ("port-b41d0e55", "rejected"),
        ]
        assert await c.port_messages(cursor) == ([], cursor)
        batch = [
            {"port_id": f"e2e-{n}", "mdn": f"+1555400{n:04d}", "code": "submitted", "timestamp": 63750100000 + n}
            for n in range(1_500)
        ]
        sandbox.admin("POST", "/port_messages", json=batch[:1_200])
        got, cursor2 = await c.port_messages(cursor)  # two pages of the carrier's 1000
        sandbox.admin("POST", "/port_messages", json=batch[1_200:])
        rest, cursor3 = await c.port_messages(cursor2)
        ids = [m["port_id"] for m in got + rest]
        assert ids == [m["port_id"] for m in batch]  # every message once, in order
        assert await c.port_messages(cursor3) == ([], cursor3)
        again, _ = await c.port_messages(None)  # the log itself is kept: from the start, all of it
        assert len(again) == 3 + 1_500


async def test_faults_over_the_wire(sandbox):
    sandbox.admin("POST", "/faults", json={"status": None, "delay_seconds": 30, "count": None})
    try:
        async with sandbox.client(timeout=0.3, retries=1) as c:
            with pytest.raises(CarrierTimeout):
                await c.subscription(mdn="+15550001111")
    finally:
        sandbox.admin("DELETE", "/faults")
    sandbox.admin("POST", "/faults", json={"status": 503, "delay_seconds": 0, "count": 2})
    async with sandbox.client() as c:
        assert (await c.subscription(mdn="+15550001111"))["mdn"] == "+15550001111"  # two retries absorb it
    sandbox.admin("POST", "/faults", json={"status": 503, "delay_seconds": 0, "count": None})
    try:
        async with sandbox.client(retries=1) as c:
            with pytest.raises(CarrierUnavailable):
                await c.port_messages(None)
    finally:
        cleared = sandbox.admin("DELETE", "/faults").json()
    assert cleared == {"cleared": True, "served": 2}


async def test_persist_survives_a_restart(own_sandbox):
    box = own_sandbox("--persist")
    box.admin("POST", "/subscriptions", json={"mdn": "+15550007777", "esn": "E2E7777", "plan": "260PLAN1"})
    box.admin("PUT", f"/usage/{BIG_MONTH}", json={"+15550007777": 77})
    stop_cleanly(box)
    saved = json.loads(box.data_file.read_text())
    assert saved["usage"][BIG_MONTH] == {"+15550007777": 77}
    again = own_sandbox()
    async with again.client() as c:
        assert (await c.subscription(esn="e2e7777"))["mdn"] == "+15550007777"
        assert [p async for p in c.usage(BIG_MONTH)] == [[("+15550007777", 77)]]
    # without --persist, changes stay in memory only
    again.admin("DELETE", "/subscriptions", params={"mdn": "+15550007777"})
    stop_cleanly(again)
    assert json.loads(box.data_file.read_text()) == saved


async def test_killed_carrier_is_unavailable(own_sandbox):
    box = own_sandbox()
    async with box.client(retries=1) as c:
        assert (await c.subscription(mdn="+15550001111"))["mdn"] == "+15550001111"
        box.proc.kill()
        box.proc.wait(10)
        with pytest.raises(CarrierUnavailable) as e:
            await c.subscription(mdn="+15550001111")
        assert e.value.status == 502
        with pytest.raises(CarrierUnavailable):
            [page async for page in c.usage("201701")]
        with pytest.raises(CarrierUnavailable):
            await c.port_messages(None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nowhere"], "expected HOST:PORT"),
        (["--data", "{missing}"], "does not exist"),
        (["--data", "{bad}"], "subscriptions.0"),
    ],
)
def test_bad_arguments_fail_with_a_message(tmp_path, args, message):
    good = write_data(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"api_key": KEY, "subscriptions": [{"esn": "no mdn"}]}))
    argv = {"--listen": f"127.0.0.1:{free_port()}", "--data": str(good)}
    argv.update(zip(args[::2], args[1::2], strict=True))
    argv["--data"] = argv["--data"].format(missing=tmp_path / "missing.json", bad=bad)
    run = subprocess.run(
        [str(BIN / "switchboard"), "carrier-sandbox", *[x for kv in argv.items() for x in kv]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr
