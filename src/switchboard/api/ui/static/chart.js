/* Switchboard's small time-series chart: SVG, one line per series, time axis, drag to zoom.
   SBChart.render(container, {title, unit, x0, x1, series: [{name, color, points: [[tMs, value]]}],
   onZoom(x0, x1)}) draws into container (replacing what was there). No dependencies. */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  let clipCount = 0;
  const W = 640, H = 240, L = 52, R = 12, T = 12, B = 30;

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
  }

  const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800].map((s) => s * 1000);

  function timeLabel(t, span) {
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, "0");
    const hm = p(d.getHours()) + ":" + p(d.getMinutes());
    if (span <= 600000) return hm + ":" + p(d.getSeconds());
    if (span <= 2 * 86400000) return hm;
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate());
  }

  function fmt(v) {
    if (v == null || !isFinite(v)) return "–";
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  }

  function render(container, opt) {
    container.textContent = "";
    const x0 = opt.x0, x1 = Math.max(opt.x1, opt.x0 + 1);
    const all = [];
    for (const s of opt.series) for (const p of s.points) if (p[1] != null && p[0] >= x0 && p[0] <= x1) all.push(p[1]);
    let y0 = opt.yMin != null ? opt.yMin : Math.min(0, ...all);
    let y1 = all.length ? Math.max(...all) : 1;
    if (opt.yMax != null) y1 = Math.max(opt.yMax, y1);
    if (y1 <= y0) y1 = y0 + 1;
    const ystep = niceStep(y1 - y0, 4);
    y1 = Math.ceil(y1 / ystep) * ystep;
    const sx = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => H - B - ((v - y0) / (y1 - y0)) * (H - T - B);

    const summary = opt.series.map((s) => {
      const vals = s.points.filter((p) => p[1] != null && p[0] >= x0 && p[0] <= x1).map((p) => p[1]);
      return s.name + ": " + (vals.length ? vals.length + " points, latest " + fmt(vals[vals.length - 1]) +
        " " + opt.unit + ", min " + fmt(Math.min(...vals)) + ", max " + fmt(Math.max(...vals)) : "no data");
    }).join("; ");
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.textContent = opt.title + " (" + opt.unit + ")";
    fig.appendChild(cap);
    const svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img",
      "aria-label": opt.title + ". " + (summary || "no data") });
    svg.dataset.metric = opt.key || opt.title;
    fig.appendChild(svg);
    container.appendChild(fig);

    for (let v = y0; v <= y1 + 1e-9; v += ystep) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid" }, svg);
      el("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end" }, svg).textContent = fmt(v);
    }
    const span = x1 - x0;
    const tstep = TIME_STEPS.find((s) => span / s <= 6) || 2592000000;
    for (let t = Math.ceil(x0 / tstep) * tstep; t <= x1; t += tstep) {
      el("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, class: "grid" }, svg);
      el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, svg).textContent = timeLabel(t, span);
    }
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, svg);
    el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, svg);

    const clipId = "clip" + (++clipCount);
    el("rect", { x: L, y: T, width: W - L - R, height: H - T - B }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    const plot = el("g", { "clip-path": "url(#" + clipId + ")" }, svg);
    let points = 0;
    for (const s of opt.series) {
      const vis = s.points.filter((p) => p[1] != null && p[0] >= x0 - span * 0.05 && p[0] <= x1 + span * 0.05);
      if (!vis.length) continue;
      const g = el("g", { class: "series", "data-series": s.name }, plot);
      if (vis.length > 1) {
        el("polyline", { points: vis.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" "),
          fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round" }, g);
      }
      for (const p of vis) {
        if (p[0] < x0 || p[0] > x1) continue;
        const c = el("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: vis.length > 120 ? 1.5 : 3,
          fill: s.color, class: "point" }, g);
        el("title", {}, c).textContent = s.name + " " + new Date(p[0]).toLocaleString() + ": " + fmt(p[1]) + " " + opt.unit;
        points++;
      }
    }
    svg.dataset.points = String(points);
    if (!points) {
      el("text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle" }, svg).textContent = "No measurements in this range";
    }

    // drag to zoom: a brush over the plot area; releasing it with some width zooms to that span
    const overlay = el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "transparent", cursor: "crosshair" }, svg);
    let start = null, brush = null;
    const toX = (ev) => {
      const r = svg.getBoundingClientRect();
      return Math.min(W - R, Math.max(L, ((ev.clientX - r.left) / r.width) * W));
    };
    overlay.addEventListener("pointerdown", (ev) => {
      start = toX(ev);
      overlay.setPointerCapture(ev.pointerId);
      brush = el("rect", { x: start, y: T, width: 0, height: H - T - B, class: "brush" }, svg);
    });
    overlay.addEventListener("pointermove", (ev) => {
      if (start == null) return;
      const x = toX(ev);
      brush.setAttribute("x", Math.min(start, x));
      brush.setAttribute("width", Math.abs(x - start));
    });
    const end = (ev) => {
      if (start == null) return;
      const x = toX(ev), a = Math.min(start, x), b = Math.max(start, x);
      start = null;
      brush.remove();
      if (b - a >= 6 && opt.onZoom) {
        const inv = (px) => x0 + ((px - L) / (W - L - R)) * (x1 - x0);
        opt.onZoom(inv(a), inv(b));
      }
    };
    overlay.addEventListener("pointerup", end);
    overlay.addEventListener("pointercancel", () => { start = null; if (brush) brush.remove(); });
    return svg;
  }

  window.SBChart = { render: render, format: fmt };
})();
