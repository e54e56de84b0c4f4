"""The web dashboard (/ui) in headless Chromium (Debian's `chromium`, driven by Playwright with
`executable_path`; Playwright's own browser downloads are never used) against a real
`switchboard serve`, with real SIP peers (tests/call_peers.Phone) and the built-in probe server.

Screenshots and the page-weight / first-render figures are saved under the pytest tmp folder
(the path is printed); SWITCHBOARD_UI_ARTIFACTS names another folder."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.call_peers import Phone
from tests.conftest import ADMIN_PASSWORD, make_server, skip_or_fail
from tests.sip_peers import Jade, wait_for

PJSIP = """
[alice]
type=endpoint
context=internal
auth=alice
aors=alice
allow=ulaw

[alice]
type=auth
username=alice
password=alice-pass

[alice]
type=aor
max_contacts=2
"""

EXTENSIONS = """
[internal]
exten => 800,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()
"""

BAD_DIALPLAN = "[internal]\nexten => 100,n,NoOp(no first priority)\n"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("SWITCHBOARD_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def say(request, line: str) -> None:
    """A line in pytest's output even when output is captured (-q)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("SWITCHBOARD_UI_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("ui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        skip_or_fail("chromium is not installed (Debian package chromium; scripts/install-test-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui-serve")
    srv, _ = make_server("sqlite", tmp)
    srv.start()
    jade = Jade(srv.url, "admin", ADMIN_PASSWORD)
    jade.put_pjsip(PJSIP)
    r = jade.call("PUT", "/admin/dialplan/configurations/extensions.conf", json={"data": EXTENSIONS})
    assert r.status_code == 200, r.text
    yield srv, jade
    jade.close()
    code = srv.stop()
    log = srv.log()
    assert code == 0, f"serve did not stop cleanly ({code})"
    assert "Traceback" not in log, log


def sign_in(page, url: str, password: str = ADMIN_PASSWORD) -> None:
    page.goto(url + "/ui")
    form = page.locator("#login-form")
    form.get_by_label("Username").fill("admin")
    form.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def page(browser, pbx):
    srv, _ = pbx
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    sign_in(pg, srv.url)
    pg.wait_for_selector("#view-overview:not([hidden])")
    yield pg
    context.close()


def shot(request, page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    say(request, f"screenshot: {path}")
    return path


def go(page, view: str) -> None:
    page.evaluate(f"location.hash = '#/{view}'")
    page.wait_for_selector(f"#view-{view}:not([hidden])")


# ---- sign in, page weight, first render, offline ---------------------------------------------
def test_sign_in_weight_and_first_render(request, browser, pbx, artifacts):
    srv, _ = pbx
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    loaded: dict[str, int] = {}
    foreign: list[str] = []
    measuring = [True]  # the first load only: later ones are answered 304 from the browser's cache

    def on_response(resp):
        if not resp.url.startswith(srv.url):
            foreign.append(resp.url)
        elif measuring[0] and resp.status == 200 and "/ui" in resp.url and "/ui/api" not in resp.url:
            loaded[resp.url] = len(resp.body())

    pg.on("response", on_response)
    pg.on("request", lambda r: None if r.url.startswith((srv.url, "data:")) else foreign.append(r.url))
    t0 = time.monotonic()
    pg.goto(srv.url + "/ui", wait_until="load")
    wall_ms = (time.monotonic() - t0) * 1000
    measuring[0] = False
    # the load event can come before the first paint (under CPU load it did: no paint entry yet)
    pg.wait_for_function(
        "performance.getEntriesByType('paint').some(p => p.name === 'first-contentful-paint')", timeout=10_000
    )
    timing = pg.evaluate(
        """() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const paint = Object.fromEntries(performance.getEntriesByType('paint').map(p => [p.name, p.startTime]));
        return {fcp: paint['first-contentful-paint'] ?? null, fp: paint['first-paint'] ?? null,
                dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
    }"""
    )
    assert pg.get_by_role("heading", name="Sign in").is_visible()
    shot(request, pg, artifacts, "01-sign-in")
    # a wrong password is said, next to the form
    sign_in(pg, srv.url, password="not-the-password")
    pg.wait_for_selector("#login-error:has-text('Wrong username or password')")
    sign_in(pg, srv.url)
    pg.wait_for_selector("#view-overview:not([hidden])")
    assert pg.evaluate("sessionStorage.getItem('sb.token')"), "the token is kept in sessionStorage"
    assert pg.locator("#whoami").text_content() == "Signed in as admin"
    # no event stream on this server yet: the page says it polls
    pg.wait_for_selector("#live[data-mode='polling'], #live[data-mode='live']")
    weight = sum(loaded.values())
    figures = {
        "page_weight_bytes": weight,
        "files": {u.removeprefix(srv.url): n for u, n in sorted(loaded.items())},
        "first_contentful_paint_ms": round(timing["fcp"], 1) if timing["fcp"] is not None else None,
        "dom_content_loaded_ms": round(timing["dcl"], 1),
        "load_event_ms": round(timing["load"], 1),
        "wall_clock_load_ms": round(wall_ms, 1),
    }
    (artifacts / "metrics.json").write_text(json.dumps(figures, indent=2))
    say(
        request,
        f"dashboard: page weight {weight} bytes in {len(loaded)} files; first contentful paint "
        f"{figures['first_contentful_paint_ms']} ms; DOMContentLoaded {figures['dom_content_loaded_ms']} ms; "
        f"load {figures['load_event_ms']} ms (figures in {artifacts / 'metrics.json'})",
    )
    assert not foreign, f"the page fetched from elsewhere: {foreign}"
    assert weight < 120_000, figures
    assert figures["first_contentful_paint_ms"] is not None and figures["first_contentful_paint_ms"] < 3000, figures
    context.close()


def test_docs_page_works_offline(request, browser, pbx, artifacts):
    srv, _ = pbx
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    foreign: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith((srv.url, "data:")) else foreign.append(r.url))
    pg.goto(srv.url + "/docs")
    pg.wait_for_selector(".swagger-ui .info .title")
    assert "Switchboard" in pg.locator(".swagger-ui .info .title").first.text_content()
    pg.wait_for_selector(".opblock-tag")
    assert pg.locator(".opblock-tag").count() > 5
    shot(request, pg, artifacts, "02-docs")
    assert not foreign, f"/docs fetched from elsewhere: {foreign}"
    context.close()


# ---- live views ---------------------------------------------------------------------------------
def test_a_registration_appears(request, page, pbx, artifacts):
    srv, jade = pbx
    go(page, "overview")
    assert page.locator("#contacts tr[data-id='alice']").count() == 0
    with Phone(user="alice") as phone:
        assert phone.register(srv.sip_port, "alice", "alice-pass").status == 200
        page.wait_for_selector("#contacts tr[data-id='alice']", timeout=10_000)
        row = page.locator("#contacts tr[data-id='alice']")
        assert f"127.0.0.1:{phone.port}" in row.text_content()
        assert "call-peers-phone" in row.text_content()
        shot(request, page, artifacts, "03-registration")
        phone.register(srv.sip_port, "alice", "alice-pass", expires=0)
        page.wait_for_selector("#contacts tr[data-id='alice']", state="detached", timeout=10_000)


def test_a_call_appears_and_is_hung_up_from_the_page(request, page, pbx, artifacts):
    srv, jade = pbx
    go(page, "calls")
    with Phone(user="alice") as phone:
        call = phone.invite(srv.sip_port, "800", user="alice", password="alice-pass")
        assert call.wait_final(10) and call.status == 200, call.status
        button = page.get_by_role("button", name="Hang up PJSIP/alice")
        button.wait_for(timeout=10_000)
        row = page.locator("#channels tbody tr").first
        assert "800@internal" in row.text_content() and "Up" in row.text_content()
        assert "Wait(30)" in row.text_content()
        shot(request, page, artifacts, "04-call")
        button.click()
        assert call.wait_bye(10) is not None or call.ended.is_set(), "the phone got no BYE"
        page.wait_for_selector("#channels td.empty", timeout=10_000)
        assert wait_for(lambda: jade.get("/admin/core/channels")["list"] == [], 5)
        assert "Hung up PJSIP/alice" in page.locator("#notice").text_content()
        shot(request, page, artifacts, "05-call-hung-up")


def test_a_probe_result_is_plotted(request, page, pbx, artifacts):
    srv, _ = pbx
    with srv.client() as admin:
        me = admin.get("/users/me").json()
        local = next(s for s in admin.get("/servers").json()["collection"] if s["name"] == "local")
        ep = admin.post(
            f"/users/{me['id']}/endpoints",
            json={"endpoint": {"name": "Own SIP port", "ip_address": f"127.0.0.1:{srv.sip_port}"}},
        ).json()
        r = admin.post(
            f"/users/{me['id']}/endpoints/{ep['id']}/voip_tests",
            json={"voip_test": {"server_id": local["id"], "interval_seconds": 5}},
        )
        assert r.status_code == 201, r.text
    go(page, "monitoring")
    page.wait_for_selector(f"#mon-endpoint option[value='{ep['id']}']", state="attached")
    page.select_option("#mon-endpoint", str(ep["id"]))
    # the built-in probe measures within seconds; the page draws it when the result arrives
    page.wait_for_function(
        "() => +(document.querySelector('svg[data-metric=mos]')?.dataset.points || 0) >= 1", timeout=40_000
    )
    for metric in ("rtt", "jitter", "loss", "mos"):
        svg = page.locator(f"svg[data-metric={metric}]")
        assert int(svg.get_attribute("data-points")) >= 1
        assert "local" in svg.get_attribute("aria-label")
    assert page.locator("svg[data-metric=mos] polyline, svg[data-metric=mos] circle.point").count() >= 1
    assert "local: MOS 4." in page.locator("#mon-tests").text_content()
    shot(request, page, artifacts, "06-probe-chart")
    # zoom: the buttons, then a drag across the chart
    page.get_by_role("button", name="Zoom in").click()
    page.wait_for_selector("#mon-range:has-text('zoomed')")
    page.get_by_role("button", name="Reset").click()
    page.wait_for_function("() => !document.getElementById('mon-range').textContent.includes('zoomed')")
    box = page.locator("svg[data-metric=rtt]").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.6, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.97, y, steps=5)
    page.mouse.up()
    page.wait_for_selector("#mon-range:has-text('zoomed')")
    page.get_by_role("button", name="15 min").click()
    page.wait_for_function("() => !document.getElementById('mon-range').textContent.includes('zoomed')")


def test_a_dialplan_error_is_shown_and_a_backup_restored(request, page, pbx, artifacts):
    srv, jade = pbx
    go(page, "config")
    page.select_option("#cfg-family", "dialplan")
    page.wait_for_function("() => document.getElementById('cfg-text').value.includes('exten => 800')")
    live_before = jade.get("/admin/dialplan/configurations/extensions.conf")["data"]
    page.get_by_label("extensions.conf (live file)").fill(BAD_DIALPLAN)
    page.get_by_role("button", name="Save and reload").click()
    error = page.locator("#cfg-error")
    error.filter(has_text="line 2").wait_for(timeout=10_000)
    assert "priority n without a previous priority" in error.text_content()
    assert page.locator("#cfg-text").get_attribute("aria-invalid") == "true"
    # the offending line is selected in the editor
    assert (
        page.evaluate(
            "() => { const t = document.getElementById('cfg-text');"
            " return t.value.slice(t.selectionStart, t.selectionEnd); }"
        )
        == "exten => 100,n,NoOp(no first priority)"
    )
    shot(request, page, artifacts, "07-dialplan-error")
    assert jade.get("/admin/dialplan/configurations/extensions.conf")["data"] == live_before, "nothing was saved"
    # a good save makes a backup; restoring that backup puts the old text back
    page.get_by_label("extensions.conf (live file)").fill(EXTENSIONS + "exten => 801,1,Hangup()\n")
    page.get_by_role("button", name="Save and reload").click()
    page.wait_for_selector("#cfg-state:has-text('Saved')")
    assert error.text_content() == ""
    assert "801" in jade.get("/admin/dialplan/configurations/extensions.conf")["data"]
    backups = page.locator("#backups button[data-restore]")
    assert backups.count() >= 1
    newest = backups.first.get_attribute("data-restore")
    page.get_by_role("button", name=f"View {newest}").click()
    assert "exten => 800" in page.locator("#backup-view").text_content()
    page.get_by_role("button", name=f"Restore {newest}").click()
    page.wait_for_selector("#notice:has-text('Restored')")
    assert jade.get("/admin/dialplan/configurations/extensions.conf")["data"] == live_before
    shot(request, page, artifacts, "08-backup-restored")


def test_queues_parking_alerts_and_users(request, page, pbx, artifacts):
    go(page, "queues")
    page.wait_for_selector("#queues table")
    assert "No call is parked" in page.locator("#parked").text_content()
    go(page, "alerts")
    page.wait_for_selector("#alerts table")
    go(page, "users")
    page.wait_for_selector("#users tr[data-id='admin']")
    form = page.locator("#user-form")
    form.get_by_label("Username").fill("carol")
    form.get_by_label("Name", exact=True).fill("Carol")
    page.locator("#nu-password").fill("carol-pass-1")
    page.get_by_role("button", name="Create user").click()
    page.wait_for_selector("#users tr[data-id='carol']")
    shot(request, page, artifacts, "09-users")
    page.get_by_role("button", name="Delete user carol").click()
    page.wait_for_selector("#users tr[data-id='carol']", state="detached")


# ---- the event stream, when the server has one ------------------------------------------------
def test_events_from_the_stream_update_the_page_and_resume_with_last_event_id(request, browser, pbx):
    """The stream is another branch's work: here the browser is handed a stream (Playwright route)
    to show the page reads it, refreshes what an event concerns, and resumes from the last id."""
    srv, _ = pbx
    context = browser.new_context()
    seen: list[dict] = []

    def stream(route):
        seen.append(dict(route.request.headers))
        if len(seen) == 1:
            body = (
                ": hello\n\n"
                'id: 41\nevent: registration.added\ndata: {"aor": "alice", "uri": "sip:alice@127.0.0.1:5099"}\n\n'
                'id: 42\nevent: channel.created\ndata: {"channel": "PJSIP/alice-00000009"}\n\n'
            )
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)
        else:
            route.fulfill(status=404, headers={"Content-Type": "application/json"}, body="{}")

    context.route("**/events/stream*", stream)
    pg = context.new_page()
    sign_in(pg, srv.url)
    pg.wait_for_selector("#events li:has-text('registration.added')")
    assert "aor=alice" in pg.locator("#events").text_content()
    assert "#42  channel.created" in pg.locator("#events").text_content()
    # the stream ended: the page reconnects from the last id it saw, then (404 here) polls
    for _ in range(100):  # the route handler runs while Playwright is called: wait inside the page
        if len(seen) >= 2:
            break
        pg.wait_for_timeout(100)
    assert seen[0].get("last-event-id") is None
    assert seen[1].get("last-event-id") == "42"
    pg.wait_for_selector("#live[data-mode='polling']")
    context.close()


# ---- narrow screens and accessibility ----------------------------------------------------------
CONTRAST = """
() => {
  const lum = (c) => { const m = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; };
  const bg = (el) => { for (; el; el = el.parentElement) { const b = getComputedStyle(el).backgroundColor;
      if (b && !b.startsWith('rgba(0, 0, 0, 0)') && b !== 'transparent') return b; } return 'rgb(255,255,255)'; };
  const out = [];
  for (const el of document.querySelectorAll('h1,h2,h3,th,td,label,button,nav a,.live,.muted,p')) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const a = lum(getComputedStyle(el).color), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push([el.tagName + ' ' + el.textContent.trim().slice(0, 30), ratio]);
  }
  return out;
}
"""


def test_narrow_screen_keyboard_and_accessibility(request, browser, pbx, artifacts):
    srv, _ = pbx
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    pg = context.new_page()
    sign_in(pg, srv.url)
    pg.wait_for_selector("#view-overview:not([hidden])")
    for view in ("overview", "calls", "monitoring", "config", "users"):
        go(pg, view)
        pg.wait_for_timeout(300)
        overflow = pg.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        wide = pg.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.offsetParent"
            " && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1"
            " && !e.closest('.scroll, nav ul, .events, .backup-view'))"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        assert overflow <= 1, f"{view}: the page scrolls sideways by {overflow}px at 375px: {wide[:8]}"
        # every form control has a label; every button a name
        unlabeled = pg.evaluate(
            "() => [...document.querySelectorAll('input,select,textarea')].filter(e => !e.labels.length"
            " && !e.getAttribute('aria-label')).map(e => e.id)"
        )
        assert not unlabeled, unlabeled
        nameless = pg.evaluate(
            "() => [...document.querySelectorAll('button')].filter(b => !(b.getAttribute('aria-label')"
            " || b.textContent.trim())).length"
        )
        assert nameless == 0
        low = [(what, round(ratio, 2)) for what, ratio in pg.evaluate(CONTRAST) if ratio < 4.5]
        assert not low, f"{view}: text below 4.5:1 contrast: {low}"
    go(pg, "overview")
    shot(request, pg, artifacts, "10-narrow-overview")
    # keyboard: on a fresh load the skip link comes first, then the navigation; Enter follows a link
    pg.reload()
    pg.wait_for_selector("#view-overview:not([hidden])")
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.className") == "skip"
    for _ in range(3):
        pg.keyboard.press("Tab")
        if pg.evaluate("document.activeElement.dataset.view") == "calls":
            break
    assert pg.evaluate("document.activeElement.dataset.view") == "calls"
    pg.keyboard.press("Enter")
    pg.wait_for_selector("#view-calls:not([hidden])")
    assert pg.locator("nav a[aria-current='page']").text_content() == "Calls"
    context.close()


# ---- the dashboard's JSON routes (no browser) ----------------------------------------------------
def test_ui_api_needs_a_token_and_keeps_users_apart(pbx):
    srv, jade = pbx
    base = srv.url + "/ui/api"
    assert httpx.get(base + "/me").status_code == 401
    assert httpx.get(base + "/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    me = httpx.get(base + "/me", headers={"Authorization": f"Bearer {jade.token}"}).json()
    assert me["username"] == "admin" and me["admin"] is True
    with srv.client() as admin:
        r = admin.post(
            "/users",
            json={"user": {"username": "dave", "password": "dave-pass-12", "name": "Dave", "category": "Normal"}},
        )
        assert r.status_code == 201, r.text
    login = httpx.post(srv.url + "/v1/admin/login", auth=("dave", "dave-pass-12"))
    assert login.status_code == 200, login.text
    dave = {"X-Auth-Token": login.json()["result"]["authtoken"]}
    assert httpx.get(base + "/monitoring", headers=dave).json()["endpoints"] == []
    assert httpx.get(base + "/monitoring?user_id=1", headers=dave).status_code in (403, 404)
    assert httpx.get(base + "/alerts?user_id=1", headers=dave).status_code in (403, 404)
    assert (
        httpx.get(base + "/monitoring?user_id=1", headers={"Authorization": f"Bearer {jade.token}"}).status_code == 200
    )
    assert httpx.get(srv.url + "/ui/static/app.js").headers["content-type"].startswith("application/javascript")
    assert httpx.get(srv.url + "/ui/static/nope.js").status_code == 404
    index = httpx.get(srv.url + "/ui")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert httpx.get(srv.url + "/ui", headers={"If-None-Match": index.headers["etag"]}).status_code == 304
