/* Switchboard dashboard: one page, no framework, no build step.
   Signs in with jade (POST /v1/admin/login, HTTP Basic) and keeps the token in sessionStorage.
   Live data: the event stream (GET /events/stream, Server-Sent Events read with fetch so the status
   and Last-Event-ID are ours to handle); each event refreshes the views it concerns from the REST
   routes. Where the server has no event stream (404) the page polls the visible view instead. */
(function () {
  "use strict";
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  const S = {
    token: sessionStorage.getItem("sb.token"),
    user: JSON.parse(sessionStorage.getItem("sb.user") || "null"),
    view: null, mode: "off", lastSeq: null, stream: null, pollTimer: null, pending: new Set(), flushTimer: null,
    mon: { endpoints: [], endpoint: null, range: 900, x0: null, x1: null, zoomed: false },
    cfg: { family: "dialplan", live: null, dirty: false, files: [] },
  };
  const VIEWS = ["overview", "calls", "queues", "monitoring", "alerts", "config", "users"];
  // which views an event type concerns (its prefix before the first dot)
  const EVENT_VIEWS = {
    registration: ["overview"], contact: ["overview"], trunk: ["overview"], channel: ["calls", "queues"],
    bridge: ["calls"], dtmf: [], queue: ["queues"], parking: ["queues", "calls"], agent: ["queues"],
    probe: ["monitoring"], alert: ["alerts", "monitoring"], config: ["config", "overview", "queues"], gap: VIEWS,
  };

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // ---- HTTP ------------------------------------------------------------------------------------
  async function request(url, opts) {
    let r;
    try { r = await fetch(url, Object.assign({ cache: "no-store" }, opts)); }
    catch (e) { throw new ApiError(0, "the server did not answer (" + e.message + ")"); }
    let body = null;
    const text = await r.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (r.status === 401 && S.token) { signOut("Your session has ended: sign in again."); }
    if (!r.ok) {
      const msg = (body && body.error && (body.error.message || body.message)) || (body && body.message) ||
        (body && body.errors && body.errors.join("; ")) || r.status + " " + r.statusText;
      throw new ApiError(r.status, String(msg));
    }
    return body;
  }
  function withToken(path) { return path + (path.includes("?") ? "&" : "?") + "authtoken=" + encodeURIComponent(S.token); }
  async function jade(method, path, data) {
    const opts = { method: method, headers: {} };
    if (data !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(data); }
    const body = await request(withToken("/v1" + path), opts);
    return body ? body.result : null;
  }
  async function uiApi(path) {
    return request("/ui/api" + path, { headers: { Authorization: "Bearer " + S.token } });
  }
  function basic(user, pass) {
    const bytes = new TextEncoder().encode(user + ":" + pass);
    let bin = "";
    bytes.forEach((b) => { bin += String.fromCharCode(b); });
    return "Basic " + btoa(bin);
  }

  // ---- DOM helpers ---------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function show(v) { return v == null || v === "" ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v); }
  /* a table of rows; columns [{key, label, fmt(row) -> text or Node}] or null: every scalar key of the rows */
  function table(target, rows, columns, caption, opts) {
    opts = opts || {};
    if (!columns) {
      const keys = [];
      for (const r of rows) for (const k in r) if (!keys.includes(k) && (typeof r[k] !== "object" || r[k] === null)) keys.push(k);
      columns = keys.slice(0, 12).map((k) => ({ key: k, label: k.replace(/_/g, " ") }));
      if (!columns.length) columns = [{ key: "", label: "item", fmt: (r) => JSON.stringify(r) }];
    }
    const t = h("table", { "aria-label": caption });
    const head = h("tr");
    for (const c of columns) head.append(h("th", { scope: "col", text: c.label }));
    t.append(h("thead", {}, head));
    const body = h("tbody");
    if (!rows.length) body.append(h("tr", {}, h("td", { class: "empty", colspan: String(columns.length), text: opts.empty || "None" })));
    for (const r of rows) {
      const tr = h("tr");
      if (opts.rowId) tr.dataset.id = opts.rowId(r);
      for (const c of columns) {
        const v = c.fmt ? c.fmt(r) : show(r[c.key]);
        tr.append(h("td", {}, v instanceof Node ? v : String(v)));
      }
      body.append(tr);
    }
    t.append(body);
    const el = typeof target === "string" ? $(target) : target;
    el.replaceChildren(t);
  }
  function setCount(id, n) { const e = $(id); if (e) e.textContent = "(" + n + ")"; }
  function notice(msg) { $("notice").textContent = msg || ""; }
  function ago(iso) {
    if (!iso) return "–";
    const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : new Date(iso).toLocaleString();
  }

  // ---- sign in / out --------------------------------------------------------------------------
  async function signIn(ev) {
    ev.preventDefault();
    const user = $("login-user").value.trim(), pass = $("login-pass").value;
    $("login-error").textContent = "";
    if (!user || !pass) { $("login-error").textContent = "Enter your username and password."; return; }
    try {
      const body = await request("/v1/admin/login", { method: "POST", headers: { Authorization: basic(user, pass) } });
      S.token = body.result.authtoken;
      S.user = await uiApi("/me");
      sessionStorage.setItem("sb.token", S.token);
      sessionStorage.setItem("sb.user", JSON.stringify(S.user));
      $("login-pass").value = "";
      started();
      location.hash = "#/overview";
      route();
    } catch (e) {
      S.token = null;
      $("login-error").textContent = e.status === 401 ? "Wrong username or password." : "Sign-in failed: " + e.message;
      $("login-user").focus();
    }
  }
  function signOut(msg) {
    const token = S.token;
    S.token = null; S.user = null;
    sessionStorage.removeItem("sb.token"); sessionStorage.removeItem("sb.user");
    stopLive();
    if (token && !msg) fetch("/v1/admin/login?authtoken=" + encodeURIComponent(token), { method: "DELETE" }).catch(() => {});
    $("nav").hidden = true; $("session").hidden = true;
    notice(msg || "");
    location.hash = "#/login";
    route();
  }
  function started() {
    $("nav").hidden = false; $("session").hidden = false;
    $("whoami").textContent = S.user ? "Signed in as " + S.user.username : "";
    notice("");
    startLive();
  }

  // ---- live updates: the event stream, or polling without one ----------------------------------
  function setMode(mode, detail) {
    S.mode = mode;
    const e = $("live");
    e.dataset.mode = mode;
    e.textContent = mode === "live" ? "Live (event stream)" : mode === "polling" ? "Polling every " + POLL_MS / 1000 + " s" :
      mode === "reconnecting" ? "Reconnecting…" : detail || "Connecting…";
  }
  function startLive() {
    stopLive();
    const ctrl = new AbortController();
    S.stream = ctrl;
    streamLoop(ctrl);
  }
  function stopLive() {
    if (S.stream) S.stream.abort();
    S.stream = null;
    stopPolling();
  }
  function startPolling() {
    stopPolling();
    setMode("polling");
    S.pollTimer = setInterval(() => { if (!document.hidden && S.view) refresh([S.view]); }, POLL_MS);
  }
  function stopPolling() { if (S.pollTimer) clearInterval(S.pollTimer); S.pollTimer = null; }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function streamLoop(ctrl) {
    let backoff = 1000;
    while (S.stream === ctrl && S.token) {
      let r;
      const headers = { Accept: "text/event-stream" };
      if (S.lastSeq != null) headers["Last-Event-ID"] = String(S.lastSeq);
      try {
        r = await fetch("/events/stream?token=" + encodeURIComponent(S.token), { headers: headers, signal: ctrl.signal, cache: "no-store" });
      } catch (e) {
        if (ctrl.signal.aborted) return;
        r = null;
      }
      if (r && (r.status === 404 || r.status === 405 || r.status === 501)) { startPolling(); return; } // no stream here
      if (r && r.status === 401) { signOut("Your session has ended: sign in again."); return; }
      if (r && r.ok && r.body) {
        stopPolling();
        setMode("live");
        backoff = 1000;
        refresh([S.view]); // catch up with what happened while we were not listening
        try { await readEvents(r.body, ctrl); } catch (e) { if (ctrl.signal.aborted) return; }
      }
      if (S.stream !== ctrl) return;
      setMode("reconnecting");
      if (!S.pollTimer) refresh([S.view]);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 15000);
    }
  }
  async function readEvents(body, ctrl) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || ctrl.signal.aborted) return;
      buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = { id: null, type: "message", data: [] };
        for (const line of block.split("\n")) {
          if (!line || line[0] === ":") continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
          if (field === "id") ev.id = val; else if (field === "event") ev.type = val; else if (field === "data") ev.data.push(val);
        }
        if (ev.id !== null || ev.data.length) onEvent(ev);
      }
    }
  }
  function onEvent(ev) {
    let data = null;
    try { data = ev.data.length ? JSON.parse(ev.data.join("\n")) : null; } catch (e) { data = ev.data.join("\n"); }
    if (data && typeof data === "object" && data.type && data.seq != null && ev.type === "message") { ev.type = data.type; data = data.data; }
    if (ev.id !== null && ev.id !== "") S.lastSeq = ev.id;
    logEvent(ev.id, ev.type, data);
    const views = EVENT_VIEWS[ev.type.split(".")[0]] || [];
    for (const v of views) S.pending.add(v);
    if (!S.flushTimer) S.flushTimer = setTimeout(() => { S.flushTimer = null; const v = [...S.pending]; S.pending.clear(); refresh(v); }, 150);
  }
  function logEvent(id, type, data) {
    const list = $("events");
    let summary = "";
    if (data && typeof data === "object") {
      summary = ["aor", "channel", "name", "state", "status", "queue", "endpoint", "server", "mos"].filter((k) => data[k] != null)
        .map((k) => k + "=" + show(data[k])).join(" ");
    }
    list.prepend(h("li", { text: new Date().toLocaleTimeString() + "  #" + (id || "?") + "  " + type + (summary ? "  " + summary : "") }));
    while (list.children.length > 50) list.lastChild.remove();
  }

  // ---- views ------------------------------------------------------------------------------------
  const loaders = { overview: loadOverview, calls: loadCalls, queues: loadQueues, monitoring: loadMonitoring,
    alerts: loadAlerts, config: loadConfig, users: loadUsers };
  const loading = {};
  async function refresh(views) {
    for (const v of views) {
      if (v !== S.view || !loaders[v] || !S.token) continue;
      if (loading[v]) { loading[v] = "again"; continue; }
      loading[v] = true;
      try { await loaders[v](); } catch (e) { if (e.status !== 401) notice("Could not load this page: " + e.message); }
      const again = loading[v] === "again";
      loading[v] = false;
      if (again) refresh([v]);
    }
  }
  function route() {
    let view = (location.hash.match(/^#\/(\w+)/) || [])[1];
    if (!S.token) view = "login";
    else if (!VIEWS.includes(view)) view = "overview";
    if (S.view !== (view === "login" ? null : view) && S.view) notice("");
    S.view = view === "login" ? null : view;
    for (const sec of document.querySelectorAll("section.view")) sec.hidden = sec.id !== "view-" + view;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const title = $("view-" + view).querySelector("h2").textContent;
    document.title = title + " – Switchboard";
    if (view === "login") { $("login-user").focus(); return; }
    refresh([view]);
  }

  async function loadOverview() {
    const [contacts, trunks] = await Promise.all([jade("GET", "/admin/pjsip/contacts"), jade("GET", "/registries")]);
    const c = contacts.list || [];
    setCount("contacts-count", c.length);
    table("contacts", c, [
      { key: "aor", label: "Account" }, { key: "uri", label: "Contact" }, { key: "user_agent", label: "User agent" },
      { key: "status", label: "Status", fmt: (r) => statusText(r.status) },
      { key: "round_trip_usec", label: "RTT (ms)", fmt: (r) => isFinite(+r.round_trip_usec) ? (r.round_trip_usec / 1000).toFixed(1) : "–" },
      { key: "reg_expire", label: "Expires", fmt: (r) => r.reg_expire ? new Date(r.reg_expire * 1000).toLocaleTimeString() : "–" },
    ], "Registered contacts", { rowId: (r) => r.aor, empty: "No phone is registered" });
    const t = trunks.list || [];
    setCount("trunks-count", t.length);
    table("trunks", t, null, "Trunks", { empty: "No trunk is configured" });
  }
  function statusText(s) {
    const cls = /^(reachable|avail|registered|online|up)/i.test(s || "") ? "status-ok" : /(unreach|unavail|offline|fail|rejected)/i.test(s || "") ? "status-bad" : "";
    return h("span", { class: cls, text: show(s) });
  }

  async function loadCalls() {
    const chans = (await jade("GET", "/admin/core/channels")).list || [];
    setCount("channels-count", chans.length);
    table("channels", chans, [
      { key: "channel", label: "Channel" },
      { key: "caller", label: "Caller", fmt: (r) => (r.caller_id_name && r.caller_id_name !== "<unknown>" ? r.caller_id_name + " " : "") + show(r.caller_id_num) },
      { key: "connected", label: "Connected to", fmt: (r) => show(r.connected_line_num) },
      { key: "exten", label: "Dialled", fmt: (r) => show(r.exten) + "@" + show(r.context) },
      { key: "state", label: "State", fmt: (r) => statusText(r.channel_state_desc) },
      { key: "app", label: "Application", fmt: (r) => show(r.application) + (r.application_data ? "(" + r.application_data + ")" : "") },
      { key: "duration", label: "Duration (s)" },
      { key: "act", label: "Action", fmt: (r) => h("button", { type: "button", class: "danger", "aria-label": "Hang up " + r.channel,
        "data-hangup": r.unique_id, onclick: (ev) => hangup(ev.currentTarget, r) }, "Hang up") },
    ], "Live channels", { rowId: (r) => r.unique_id, empty: "No call in progress" });
  }
  async function hangup(button, ch) {
    button.disabled = true;
    button.textContent = "Hanging up…";
    try {
      await jade("DELETE", "/admin/core/channels/" + encodeURIComponent(ch.unique_id));
      notice("Hung up " + ch.channel + ".");
    } catch (e) {
      notice("Could not hang up " + ch.channel + ": " + e.message);
      button.disabled = false;
      button.textContent = "Hang up";
    }
    refresh(["calls"]);
  }

  async function loadQueues() {
    const [q, m, e, p] = await Promise.all([jade("GET", "/admin/queue/queues"), jade("GET", "/admin/queue/members"),
      jade("GET", "/admin/queue/entries"), jade("GET", "/admin/park/parkedcalls")]);
    table("queues", q.list || [], null, "Queues", { empty: "No queue is configured" });
    table("members", m.list || [], null, "Queue members", { empty: "No member" });
    setCount("entries-count", (e.list || []).length);
    table("entries", e.list || [], null, "Callers waiting in queues", { empty: "No caller is waiting" });
    setCount("parked-count", (p.list || []).length);
    table("parked", p.list || [], null, "Parked calls", { empty: "No call is parked" });
  }

  // ---- monitoring: endpoints and their measurements per probe server ---------------------------
  const COLORS = ["#0b57d0", "#b3261e", "#1e6b34", "#7b3fa0", "#8a5300", "#006a6a"];
  const METRICS = [
    { key: "rtt", title: "Round-trip time", unit: "ms" }, { key: "jitter", title: "Jitter", unit: "ms" },
    { key: "loss", title: "Packet loss", unit: "%" }, { key: "mos", title: "MOS", unit: "1–5", yMax: 5 },
  ];
  async function loadMonitoring() {
    const data = await uiApi("/monitoring");
    S.mon.endpoints = data.endpoints;
    const sel = $("mon-endpoint");
    const keep = S.mon.endpoint;
    sel.replaceChildren(...data.endpoints.map((e) => h("option", { value: String(e.id), text: e.name + " (" + e.ip_address + ")" })));
    if (!data.endpoints.length) {
      sel.append(h("option", { value: "", text: "No endpoint yet" }));
      $("charts").textContent = ""; $("mon-tests").textContent = "";
      return;
    }
    S.mon.endpoint = data.endpoints.some((e) => e.id === keep) ? keep : data.endpoints[0].id;
    sel.value = String(S.mon.endpoint);
    await loadSeries();
  }
  function monWindow() {
    if (S.mon.zoomed) return [S.mon.x0, S.mon.x1];
    const now = Date.now();
    return [now - S.mon.range * 1000, now];
  }
  async function loadSeries() {
    const ep = S.mon.endpoints.find((e) => e.id === S.mon.endpoint);
    if (!ep) return;
    const [x0, x1] = monWindow();
    const span = (x1 - x0) / 1000;
    const kind = span <= 6 * 3600 ? "results" : span <= 8 * 86400 ? "hour" : "day";
    const q = "?kind=" + kind + "&from=" + new Date(x0).toISOString().slice(0, 19) + "Z&to=" + new Date(x1).toISOString().slice(0, 19) + "Z";
    const data = await uiApi("/endpoints/" + ep.id + "/series" + q);
    for (const b of document.querySelectorAll("#mon-ranges button")) b.setAttribute("aria-pressed", String(!S.mon.zoomed && +b.dataset.range === S.mon.range));
    $("mon-range").textContent = "Showing " + new Date(x0).toLocaleString() + " – " + new Date(x1).toLocaleString() +
      (kind === "results" ? " (each measurement)" : " (" + kind + "ly averages)") + (S.mon.zoomed ? ", zoomed" : "");
    $("mon-tests").replaceChildren(...ep.tests.map((t, i) => {
      // the newest measurement drawn, when it is newer than what the endpoint list said
      const s = data.series.find((x) => x.test_id === t.id);
      const last = s && s.points.length && data.kind === "results" ? s.points[s.points.length - 1] : null;
      const mos = last && (!t.last_tested_at || last.t >= t.last_tested_at) ? last.mos : t.mos;
      const when = last && (!t.last_tested_at || last.t >= t.last_tested_at) ? last.t : t.last_tested_at;
      return h("span", {}, h("span", { class: "swatch", style: "background:" + COLORS[i % COLORS.length] }),
        t.server + ": MOS " + (mos == null ? "–" : SBChart.format(mos)) + ", last " + ago(when) + (t.alerting_since ? " — ALERTING" : ""));
    }));
    const charts = $("charts");
    charts.replaceChildren();
    const series = data.series.map((s, i) => ({ name: s.server, color: COLORS[i % COLORS.length], raw: s.points }));
    for (const m of METRICS) {
      const box = h("div", { class: "chart-box", "data-metric": m.key });
      charts.append(box);
      SBChart.render(box, {
        key: m.key, title: m.title, unit: m.unit, yMax: m.yMax, x0: x0, x1: x1,
        series: series.map((s) => ({ name: s.name, color: s.color, points: s.raw.map((p) => [Date.parse(p.t), p[m.key]]) })),
        onZoom: (a, b) => { S.mon.zoomed = true; S.mon.x0 = a; S.mon.x1 = b; loadSeries(); },
      });
    }
    const rows = [];
    for (const s of data.series) for (const p of s.points.slice(-20)) rows.push(Object.assign({ server: s.server }, p));
    rows.sort((a, b) => (a.t < b.t ? 1 : -1));
    table("mon-table", rows.slice(0, 40), [
      { key: "t", label: "Time", fmt: (r) => new Date(r.t).toLocaleString() }, { key: "server", label: "Probe server" },
      { key: "rtt", label: "RTT (ms)", fmt: (r) => SBChart.format(r.rtt) }, { key: "jitter", label: "Jitter (ms)", fmt: (r) => SBChart.format(r.jitter) },
      { key: "loss", label: "Loss (%)", fmt: (r) => SBChart.format(r.loss) }, { key: "mos", label: "MOS", fmt: (r) => SBChart.format(r.mos) },
    ], "Latest measurements", { empty: "No measurement in this range" });
  }
  function zoom(factor) {
    const [x0, x1] = monWindow();
    const mid = (x0 + x1) / 2, half = ((x1 - x0) / 2) * factor;
    S.mon.zoomed = true;
    S.mon.x0 = mid - half;
    S.mon.x1 = Math.min(mid + half, Date.now() + 60000);
    loadSeries();
  }

  async function loadAlerts() {
    const data = await uiApi("/alerts");
    table("alerts", data.list, [
      { key: "created_at", label: "When", fmt: (r) => new Date(r.created_at).toLocaleString() },
      { key: "kind", label: "Kind", fmt: (r) => statusText(r.kind === "cleared" ? "ok: cleared" : r.kind) },
      { key: "voip_test_id", label: "VoIP test" }, { key: "mos", label: "MOS", fmt: (r) => SBChart.format(r.mos) },
      { key: "webhook_status", label: "Webhook" },
    ], "Alerts", { empty: "No alert so far" });
  }

  // ---- configuration files ----------------------------------------------------------------------
  const FAMILIES = { dialplan: "extensions.conf", pjsip: "pjsip.conf", queue: "queues.conf", park: "res_parking.conf" };
  async function loadConfig() {
    const fam = S.cfg.family;
    const list = (await jade("GET", "/admin/" + fam + "/configurations")).list || [];
    if (fam !== S.cfg.family) return;
    const liveName = FAMILIES[fam];
    const live = list.find((f) => f.name === liveName) || { name: liveName, data: "" };
    S.cfg.files = list;
    $("cfg-label").textContent = liveName + " (live file)";
    if (!S.cfg.dirty) {
      $("cfg-text").value = live.data;
      S.cfg.live = live.data;
      $("cfg-state").textContent = "Up to date";
    }
    const backups = list.filter((f) => f.name !== liveName).sort((a, b) => (a.name < b.name ? 1 : -1));
    $("backups").replaceChildren(...(backups.length ? backups.map((b) => h("li", {},
      h("code", { text: b.name }),
      h("button", { type: "button", class: "secondary", "aria-label": "View " + b.name, onclick: () => viewBackup(b) }, "View"),
      h("button", { type: "button", "aria-label": "Restore " + b.name, "data-restore": b.name, onclick: (ev) => restoreBackup(ev.currentTarget, b) }, "Restore"),
    )) : [h("li", { class: "muted", text: "No backup yet: each save keeps the previous text as one." })]));
  }
  function viewBackup(b) {
    const pre = $("backup-view");
    pre.hidden = false;
    pre.textContent = b.data;
    pre.setAttribute("aria-label", "Text of " + b.name);
    pre.focus();
  }
  async function saveConfig(text) {
    const err = $("cfg-error"), ta = $("cfg-text");
    err.textContent = "";
    ta.removeAttribute("aria-invalid");
    $("cfg-save").disabled = true;
    $("cfg-state").textContent = "Saving…";
    try {
      await jade("PUT", "/admin/" + S.cfg.family + "/configurations/" + FAMILIES[S.cfg.family], { data: text });
      S.cfg.dirty = false;
      await loadConfig();
      $("cfg-state").textContent = "Saved and reloaded at " + new Date().toLocaleTimeString();
      return true;
    } catch (e) {
      ta.setAttribute("aria-invalid", "true");
      err.textContent = "Not saved: " + e.message;
      $("cfg-state").textContent = "Not saved";
      const m = /line (\d+)/.exec(e.message);
      if (m && text === ta.value) selectLine(ta, +m[1]);
      return false;
    } finally {
      $("cfg-save").disabled = false;
    }
  }
  function selectLine(ta, n) {
    const lines = ta.value.split("\n");
    if (n < 1 || n > lines.length) return;
    const start = lines.slice(0, n - 1).reduce((a, l) => a + l.length + 1, 0);
    ta.focus();
    ta.setSelectionRange(start, start + lines[n - 1].length);
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 18;
    ta.scrollTop = Math.max(0, (n - 3) * lh);
  }
  async function restoreBackup(button, b) {
    button.disabled = true;
    S.cfg.dirty = false;
    if (await saveConfig(b.data)) notice("Restored " + b.name + " (the text it replaced is now a backup).");
    button.disabled = false;
  }

  // ---- users ------------------------------------------------------------------------------------
  async function loadUsers() {
    const users = (await jade("GET", "/admin/user/users")).list || [];
    table("users", users, [
      { key: "username", label: "Username" }, { key: "name", label: "Name" },
      { key: "tm_create", label: "Created", fmt: (r) => (r.tm_create ? new Date(r.tm_create).toLocaleString() : "–") },
      { key: "act", label: "Action", fmt: (r) => S.user && r.username === S.user.username ? h("span", { class: "muted", text: "you" }) :
        h("button", { type: "button", class: "danger", "aria-label": "Delete user " + r.username, onclick: (ev) => deleteUser(ev.currentTarget, r) }, "Delete") },
    ], "Users", { rowId: (r) => r.username });
  }
  async function createUser(ev) {
    ev.preventDefault();
    const err = $("user-error");
    err.textContent = "";
    const body = { username: $("nu-username").value.trim(), name: $("nu-name").value.trim(), password: $("nu-password").value };
    if (!body.username || !body.password) { err.textContent = "A username and a password are needed."; return; }
    try {
      await jade("POST", "/admin/user/users", body);
      ev.target.reset();
      notice("Created user " + body.username + ".");
      refresh(["users"]);
    } catch (e) { err.textContent = "Not created: " + e.message; }
  }
  async function deleteUser(button, u) {
    button.disabled = true;
    try { await jade("DELETE", "/admin/user/users/" + encodeURIComponent(u.uuid || u.username)); notice("Deleted user " + u.username + "."); }
    catch (e) { notice("Could not delete " + u.username + ": " + e.message); }
    refresh(["users"]);
  }

  // ---- wiring -----------------------------------------------------------------------------------
  function init() {
    $("login-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut());
    window.addEventListener("hashchange", () => { route(); $("main").focus({ preventScroll: true }); });
    $("mon-endpoint").addEventListener("change", (e) => { S.mon.endpoint = +e.target.value; S.mon.zoomed = false; loadSeries(); });
    for (const b of document.querySelectorAll("#mon-ranges button")) {
      b.addEventListener("click", () => { S.mon.range = +b.dataset.range; S.mon.zoomed = false; loadSeries(); });
    }
    $("zoom-in").addEventListener("click", () => zoom(0.5));
    $("zoom-out").addEventListener("click", () => zoom(2));
    $("zoom-reset").addEventListener("click", () => { S.mon.zoomed = false; loadSeries(); });
    $("cfg-family").addEventListener("change", (e) => {
      S.cfg.family = e.target.value; S.cfg.dirty = false;
      $("cfg-error").textContent = ""; $("cfg-text").removeAttribute("aria-invalid"); $("backup-view").hidden = true;
      loadConfig();
    });
    $("cfg-text").addEventListener("input", () => { S.cfg.dirty = true; $("cfg-state").textContent = "Unsaved changes"; });
    $("cfg-form").addEventListener("submit", (e) => { e.preventDefault(); saveConfig($("cfg-text").value); });
    $("cfg-revert").addEventListener("click", () => {
      S.cfg.dirty = false; $("cfg-error").textContent = ""; $("cfg-text").removeAttribute("aria-invalid"); loadConfig();
    });
    $("user-form").addEventListener("submit", createUser);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && S.view) refresh([S.view]); });
    if (S.token) started();
    route();
  }
  init();
})();
