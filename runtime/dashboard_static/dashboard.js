// The dashboard's page logic (served as /static/dashboard.js; see runtime/dashboard.py).
// Contract: render the snapshot that /state and the /events stream carry; service data is put in
// the page as text (textContent), never as HTML; no framework, nothing fetched from elsewhere.
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const svgEl = (tag, attrs, text) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
const money = (v) => (v === null || v === undefined) ? "–" : Number(v).toLocaleString("en-US", {style: "currency", currency: "USD"});
const last = {};
const changed = (key, value) => { const s = JSON.stringify(value); if (last[key] === s) return false; last[key] = s; return true; };

const MAX_CHART_POINTS = 600;  // the poller keeps at most 365 days + 200 live points

// A step path through the points' `key`: point i holds its value over its slot [x(i), x(i + 1)]
// (a missing value breaks the line).
function stepPath(points, key, x, y) {
  let d = "", open = false;
  points.forEach((p, i) => {
    const v = p[key];
    if (v === null || v === undefined) { open = false; return; }
    const py = y(v).toFixed(1);  // an open line is at x(i) already
    d += (open ? `V${py}` : `M${x(i).toFixed(1)} ${py}`) + `H${x(i + 1).toFixed(1)}`; open = true;
  });
  return d;
}

// [lo, hi] of the points' `key`, always including 0, never empty.
function range(points, key) {
  const vs = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
  let lo = Math.min(0, ...vs), hi = Math.max(0, ...vs); if (hi === lo) hi = lo + 1;
  return [lo, hi];
}

const dayLabel = (p) => new Date(p.t).toLocaleDateString("en-US", {timeZone: "UTC", month: "short", day: "numeric", year: "numeric"});
const pointLabel = (p) => p.live ? new Date(p.t).toLocaleTimeString() : dayLabel(p);

function renderFigures(e) {
  if (!e || !changed("eco", e)) return;
  $("equity-value").textContent = money(e.equity);
  $("profit-value").textContent = money(e.profitability);
  $("period").textContent = e.period_days;
  $("growth-value").textContent = (100 * e.growth_rate).toFixed(1) + " %";
  $("count-value").textContent = e.transaction_count;
}

function renderHistoryNote(hs) {
  if (!hs || !changed("histnote", hs)) return;
  $("history-note").textContent = hs.loaded ? `${hs.days} day${hs.days === 1 ? "" : "s"} with activity in the last ${hs.window_days}`
    : hs.error ? "history unavailable: " + hs.error : "loading…";
}

// Equity on the left axis, the day's net on the right one: two quantities, two scales, both
// from 0, each axis labelled in its line's colour. x: one step per point (a day from the
// ledger's history, then a change seen live), a dashed rule where live points start.
function renderEquity(snap) {
  renderFigures(snap.economy);
  renderHistoryNote(snap.history);
  const svg = $("equity-chart");
  const h = (snap.equity_history || []).slice(-MAX_CHART_POINTS);
  const W = Math.max(240, Math.round(svg.clientWidth) || 600), H = Math.max(120, Math.round(svg.clientHeight) || 200);
  if (!changed("hist", [h, W, H])) return;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const L = 78, R = 78, T = 30, B = 24;
  const [elo, ehi] = range(h, "equity"), [plo, phi] = range(h, "day_profit");
  const x = (i) => L + (W - L - R) * i / Math.max(h.length, 1);  // one slot per point
  const yOf = (lo, hi) => (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const ye = yOf(elo, ehi), yp = yOf(plo, phi);
  $("equity-path").setAttribute("d", stepPath(h, "equity", x, ye));
  $("profit-path").setAttribute("d", stepPath(h, "day_profit", x, yp));
  const axes = $("equity-axes"), labels = $("equity-labels");
  axes.replaceChildren(); labels.replaceChildren();
  for (const f of [0, 0.5, 1]) {  // grid rows: the same height on both axes
    const ev = elo + f * (ehi - elo), pv = plo + f * (phi - plo), py = ye(ev);
    axes.appendChild(svgEl("line", {x1: L, x2: W - R, y1: py, y2: py}));
    labels.appendChild(svgEl("text", {x: L - 6, y: py + 4, "text-anchor": "end", class: "axis-eq"}, money(ev)));
    labels.appendChild(svgEl("text", {x: W - R + 6, y: py + 4, "text-anchor": "start", class: "axis-pr"}, money(pv)));
  }
  if (plo < 0 && phi > 0)  // where a day's net is 0
    axes.appendChild(svgEl("line", {x1: L, x2: W - R, y1: yp(0), y2: yp(0), stroke: "#7a3e9d", "stroke-dasharray": "1 3"}));
  labels.appendChild(svgEl("text", {x: 4, y: 12, class: "axis-eq"}, "equity"));
  labels.appendChild(svgEl("text", {x: W - 4, y: 12, "text-anchor": "end", class: "axis-pr"}, "net per day"));
  const firstLive = h.findIndex((p) => p.live), history = firstLive < 0 ? h.length : firstLive;
  if (firstLive > 0) {
    const lx = x(firstLive);
    axes.appendChild(svgEl("line", {x1: lx, x2: lx, y1: T, y2: H - B, "stroke-dasharray": "3 3"}));
    labels.appendChild(svgEl("text", {x: lx + 4, y: H - B - 4}, "live"));
  }
  if (h.length > 1) labels.appendChild(svgEl("text", {x: L, y: H - 6, "text-anchor": "start"}, pointLabel(h[0])));
  if (h.length) labels.appendChild(svgEl("text", {x: W - R, y: H - 6, "text-anchor": "end"}, pointLabel(h[h.length - 1])));
  const lastP = h[h.length - 1];
  Object.assign(svg.dataset, {points: h.length, historyPoints: history, firstDay: h.length && !h[0].live ? h[0].day : "",
    equity: lastP ? lastP.equity : "", dayProfit: lastP && lastP.day_profit !== null ? lastP.day_profit : ""});
  $("equity-chart-desc").textContent = lastP
    ? `${history} days from the ledger and ${h.length - history} live points; latest equity ${money(lastP.equity)}, net of its day ${money(lastP.day_profit)}.`
    : "No data yet.";
}

function renderTransactions(snap) {
  const txs = snap.transactions || [];
  if (!changed("tx", txs)) return;
  const body = $("tx-body"), had = new Set([...body.rows].map((r) => r.dataset.id)), first = body.rows.length === 0;
  const rows = txs.map((t) => {
    const tr = el("tr"); tr.dataset.id = t.id;
    if (!first && !had.has(t.id)) tr.className = "new";
    tr.append(el("td", t.id, "id"), el("td", t.tx_type), el("td", money(t.amount), "num"), el("td", (t.timestamp || "").replace("T", " ").replace(/\.\d+/, "")));
    return tr;
  });
  if (!rows.length) { const tr = el("tr"); const td = el("td", "No transactions yet.", "muted"); td.colSpan = 4; tr.append(td); rows.push(tr); }
  body.replaceChildren(...rows);
}

function statusBadge(s) {
  const cls = s === "succeeded" ? "ok" : (s === "failed" || s === "canceled") ? "bad" : (s === "refunded" ? "warning" : "");
  return el("span", s, "badge " + cls);
}

function renderPayments(snap) {
  const ps = snap.payments || [];
  if (changed("pay", ps)) {
    const rows = ps.map((p) => { const tr = el("tr"); const st = el("td"); st.append(statusBadge(p.status));
      tr.append(el("td", p.id, "id"), el("td", money(p.amount), "num"), st); return tr; });
    if (!rows.length) { const tr = el("tr"); const td = el("td", "No payment intents yet.", "muted"); td.colSpan = 3; tr.append(td); rows.push(tr); }
    $("pay-body").replaceChildren(...rows);
  }
  const o = snap.outbox;
  if (o && changed("outbox", o)) {
    $("ob-pending").textContent = o.pending_transfers.length;
    $("ob-reports").textContent = o.pending_reports.length;
    $("ob-dead").textContent = o.dead_transfers.length;
    $("ob-delivered").textContent = o.delivered;
    $("ob-dead-list").replaceChildren(...o.dead_transfers.map((d) => {
      const li = el("li"); li.append(el("span", "dead", "badge bad"), " " + d.transfer.id + ": " + d.last_error); return li; }));
  }
}

function spark(points, key) {
  let d = ""; const n = Math.max(points.length - 1, 1);
  points.forEach((p, i) => { if (p[key] === null || p[key] === undefined) return;
    const x = (300 * i / n).toFixed(1), y = (58 - 56 * Math.min(100, Math.max(0, p[key])) / 100).toFixed(1);
    d += (d ? "L" : "M") + x + " " + y; });
  return d;
}

function duration(s) {
  s = Math.floor(s || 0); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + " d " : "") + h + " h " + m + " min";
}

function renderSystem(snap) {
  const s = snap.system; if (!s) return;
  const ram = s.ram_total_gb ? 100 * s.ram_used_gb / s.ram_total_gb : 0;
  $("cpu-meter").value = s.cpu_usage; $("cpu-out").textContent = s.cpu_usage.toFixed(1) + " %";
  $("ram-meter").value = ram; $("ram-out").textContent = ram.toFixed(1) + " %";
  $("res-meter").value = s.resonance; $("res-out").textContent = Number(s.resonance).toFixed(2);
  $("uptime").textContent = duration(s.uptime_secs);
  $("ram-detail").textContent = `${s.ram_used_gb.toFixed(1)} of ${s.ram_total_gb.toFixed(1)} GiB`;
  const h = snap.system_history || [];
  $("cpu-spark-path").setAttribute("d", spark(h, "cpu"));
  $("ram-spark-path").setAttribute("d", spark(h, "ram"));
}

function renderAlerts(snap) {
  const a = snap.alerts;
  if (!a || !changed("alerts", a)) return;
  const items = a.map((x) => { const li = el("li"); const sev = String(x.severity || "").toLowerCase();
    li.append(el("span", sev || "alert", "badge " + sev), " ", el("strong", x.name), " — " + x.message + " (since " + x.since + ")"); return li; });
  if (!items.length) items.push(el("li", "No active alerts.", "muted"));
  $("alert-list").replaceChildren(...items);
  $("alert-count").textContent = a.length ? `(${a.length})` : "";
}

function renderCheckpoint(snap) {
  const c = snap.checkpoint;
  if (!c || !changed("cp", c)) return;
  const st = $("cp-status");
  st.textContent = c.verified ? "verified" : "NOT verified";
  st.className = "status " + (c.verified ? "ok" : "bad");
  st.title = c.error || "";
  $("cp-size").textContent = c.tree_size;
  $("cp-root").textContent = c.root_hash;
  if (!c.verified) $("cp-note").textContent = "Not verified: " + c.error;
}

function renderServices(snap) {
  const ss = snap.services || [];
  if (!changed("svc", ss)) return;
  $("services").replaceChildren(...ss.map((s) => el("li", `${s.name}: ${s.up ? "up" : s.error || "unreachable"}`, "svc " + (s.up ? "up" : "down"))));
  const stale = Object.fromEntries(ss.map((s) => [s.name, !s.up]));
  for (const [sec, svc] of [["equity", "economy"], ["transactions", "economy"], ["checkpoint", "economy"], ["payments", "payment"], ["telemetry", "telemetry"], ["alerts", "telemetry"]])
    $(sec).dataset.stale = stale[svc] ? "true" : "false";
}

let latest = null;

function render(snap) {
  if (!snap || !snap.version) return;
  latest = snap;
  for (const f of [renderServices, renderAlerts, renderCheckpoint, renderSystem, renderEquity, renderTransactions, renderPayments]) {
    try { f(snap); } catch (err) { console.error(f.name, err); }
  }
  document.body.dataset.version = snap.version;
  $("updated").textContent = new Date().toLocaleTimeString();
}

window.addEventListener("resize", () => { if (latest) renderEquity(latest); });
fetch("/state").then((r) => r.json()).then(render).catch(() => {});
const es = new EventSource("/events");
es.addEventListener("snapshot", (ev) => render(JSON.parse(ev.data)));
es.onopen = () => { $("conn").textContent = "live"; };
es.onerror = () => { $("conn").textContent = "reconnecting…"; };
