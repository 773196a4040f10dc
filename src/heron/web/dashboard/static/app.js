// Heron dashboard: reads /dashboard/api/* every few seconds and draws it. No framework, no
// build step; every value reaches the page through textContent, never as HTML.
"use strict";

const REFRESH_MS = 5000;
const API = "/dashboard/api/";
const SVG = "http://www.w3.org/2000/svg";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

// An element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    ...options,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body.error_description || response.statusText);
  }
  return body;
}

// ---- formatting -------------------------------------------------------------------------

const number = new Intl.NumberFormat();

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 1)} ms`;
  if (value < 60) return `${value.toFixed(2)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value - minutes * 60)} s`;
}

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

const dollars = (value) => `$${Number(value).toFixed(value >= 10 ? 2 : 4)}`;
const firstLine = (text) => (text || "").split("\n")[0];
const badge = (value) => el("span", { className: `status ${value}` }, value);

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- queue: counts and the chart --------------------------------------------------------

function renderCounts(queue) {
  for (const node of document.querySelectorAll('[data-testid="queue-count"]')) {
    node.querySelector("strong").textContent = number.format(queue[node.dataset.status] ?? 0);
  }
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

function renderChart(minutes) {
  const chart = $("queue-chart");
  const width = 760, height = 240;
  const left = 44, right = 50, top = 12, bottom = 26;
  const plotW = width - left - right, plotH = height - top - bottom;
  const n = Math.max(minutes.length, 1);
  const slot = plotW / n;
  const rateMax = niceMax(Math.max(0, ...minutes.map((m) => Math.max(m.enqueued, m.completed + m.failed))));
  const depthMax = niceMax(Math.max(0, ...minutes.map((m) => m.depth)));
  const y = (value, max) => top + plotH - (value / max) * plotH;
  const nodes = [];

  for (const fraction of [0, 0.5, 1]) {
    const at = top + plotH - fraction * plotH;
    nodes.push(svg("line", { class: "axis", x1: left, x2: left + plotW, y1: at, y2: at }));
    nodes.push(svg("text", { x: left - 6, y: at + 4, "text-anchor": "end" }, number.format(Math.round(rateMax * fraction))));
    nodes.push(svg("text", { x: left + plotW + 6, y: at + 4 }, number.format(Math.round(depthMax * fraction))));
  }

  const bars = svg("g", { "data-testid": "chart-bars" });
  const points = [];
  minutes.forEach((m, i) => {
    const x = left + i * slot;
    const barW = Math.max(slot / 2 - 1, 1);
    const label = `${new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ` +
      `enqueued ${m.enqueued}, completed ${m.completed}, retried ${m.retried}, failed ${m.failed}, depth ${m.depth}`;
    const group = svg("g", { "data-testid": "chart-minute", "data-minute": m.minute }, svg("title", {}, label));
    const enqueuedY = y(m.enqueued, rateMax);
    group.append(svg("rect", { class: "bar-enqueued", x, y: enqueuedY, width: barW, height: top + plotH - enqueuedY }));
    const completedY = y(m.completed, rateMax);
    group.append(svg("rect", { class: "bar-completed", x: x + barW + 1, y: completedY, width: barW, height: top + plotH - completedY }));
    if (m.failed > 0) {
      const failedY = y(m.completed + m.failed, rateMax);
      group.append(svg("rect", { class: "bar-failed", x: x + barW + 1, y: failedY, width: barW, height: completedY - failedY }));
    }
    bars.append(group);
    points.push(`${(x + slot / 2).toFixed(1)},${y(m.depth, depthMax).toFixed(1)}`);
  });
  nodes.push(bars);
  nodes.push(svg("polyline", { class: "depth", "data-testid": "chart-depth", points: points.join(" ") }));

  const ticks = [0, Math.floor(n / 2), n - 1];
  for (const i of ticks) {
    if (!minutes[i]) continue;
    const text = i === n - 1 ? "now" : new Date(minutes[i].minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    nodes.push(svg("text", { x: left + i * slot + slot / 2, y: height - 8, "text-anchor": "middle" }, text));
  }
  chart.dataset.points = String(minutes.length);
  chart.replaceChildren(...nodes);
}

// ---- latency -------------------------------------------------------------------------

const LATENCY = [
  ["enqueue_to_completed", "enqueue → completed"],
  ["attempt", "claim → completed"],
  ["handler", "handler time (this process)"],
  ["claim_wait", "claim wait (this process)"],
];

function renderLatency(latency) {
  fill($("latency-table").tBodies[0], LATENCY.map(([key, label]) => {
    const row = latency[key] || {};
    return el("tr", { "data-testid": "latency-row", "data-metric": key },
      el("td", {}, label),
      el("td", { className: "num" }, seconds(row.p50)),
      el("td", { className: "num" }, seconds(row.p95)),
      el("td", { className: "num" }, seconds(row.p99)),
      el("td", { className: "num" }, number.format(row.count ?? 0)));
  }));
}

// ---- events ------------------------------------------------------------------------

function attemptChips(event) {
  const chips = event.attempts.map((a) =>
    el("span", { className: `attempt status ${a.outcome}`, "data-testid": "attempt", "data-outcome": a.outcome,
                 title: `#${a.attempt} on ${a.worker_id}, ${seconds(a.duration_seconds)}` }, a.outcome));
  if (event.status === "processing") {
    chips.push(el("span", { className: "attempt status processing", "data-testid": "attempt", "data-outcome": "running",
                            title: `on ${event.claimed_by}` }, "running"));
  }
  return chips;
}

function idButton(event) {
  return el("button", { type: "button", className: "link", "data-testid": "event-open", "data-event-id": event.id,
                        onclick: () => openEvent(event.id) }, `#${event.id}`);
}

function renderEvents(events) {
  fill($("events-table").tBodies[0], events.map((event) =>
    el("tr", { "data-testid": "event-row", "data-event-id": event.id, "data-status": event.status },
      el("td", {}, idButton(event)),
      el("td", {}, event.event_type),
      el("td", {}, badge(event.status)),
      el("td", {}, when(event.created_at)),
      el("td", {}, attemptChips(event)),
      el("td", { className: "error-text" }, firstLine(event.error_message)))));
}

function renderFailed(events) {
  $("failed-empty").hidden = events.length > 0;
  fill($("failed-table").tBodies[0], events.map((event) => {
    const errors = event.attempts.filter((a) => a.error);
    return el("tr", { "data-testid": "failed-row", "data-event-id": event.id },
      el("td", {}, idButton(event)),
      el("td", {}, event.event_type),
      el("td", {}, when(event.updated_at)),
      el("td", {},
        el("ol", { className: "errors", "data-testid": "error-history" },
          errors.map((a) => el("li", { "data-testid": "error-entry", "data-attempt": a.attempt },
            el("span", { className: "muted" }, `#${a.attempt} ${a.outcome} ${when(a.finished_at)}: `),
            el("span", { className: "error-text" }, a.error))))),
      el("td", {},
        el("button", { type: "button", className: "replay", "data-testid": "replay-button", "data-event-id": event.id,
                       onclick: (e) => replay(event.id, e.currentTarget) }, "Replay")));
  }));
}

async function replay(id, button) {
  button.disabled = true;
  try {
    await api(`events/${id}/replay`, { method: "POST" });
    notify(`Event ${id} queued again.`);
    await refresh();
  } catch (error) {
    notify(`Replay of event ${id} failed: ${error.message}`, true);
    button.disabled = false;
  }
}

async function openEvent(id) {
  const dialog = $("event-detail");
  try {
    const { event } = await api(`events/${id}`);
    $("event-detail-title").textContent = `Event #${event.id} · ${event.event_type}`;
    const fields = [
      ["status", event.status], ["created", when(event.created_at)], ["run after", when(event.run_after)],
      ["completed", when(event.completed_at)], ["retries", event.retry_count], ["attempts", event.attempt_count],
      ["claimed by", event.claimed_by || "–"], ["dedupe key", event.dedupe_key || "–"],
      ["error", event.error_message || "–"],
    ];
    $("event-detail-fields").replaceChildren(...fields.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
    fill($("event-detail-attempts").tBodies[0], event.attempts.map((a) =>
      el("tr", { "data-testid": "detail-attempt-row" },
        el("td", {}, a.attempt), el("td", {}, a.worker_id), el("td", {}, when(a.started_at)),
        el("td", {}, seconds(a.duration_seconds)), el("td", {}, badge(a.outcome)),
        el("td", { className: "error-text" }, a.error || ""))));
    $("event-payload").textContent = JSON.stringify(event.payload, null, 2);
    dialog.dataset.eventId = String(event.id);
    if (!dialog.open) dialog.showModal();
  } catch (error) {
    notify(`Event ${id}: ${error.message}`, true);
  }
}

// ---- usage and MCP -----------------------------------------------------------------

function renderUsage(usage) {
  fill($("usage-day-table").tBodies[0], usage.per_day.map((d) =>
    el("tr", { "data-testid": "usage-day-row", "data-day": d.day },
      el("td", {}, d.day),
      el("td", { className: "num" }, number.format(d.runs)),
      el("td", { className: "num" }, number.format(d.answered)),
      el("td", { className: "num" }, number.format(d.input_tokens)),
      el("td", { className: "num" }, number.format(d.output_tokens)),
      el("td", { className: "num", title: d.unpriced_runs ? `${d.unpriced_runs} runs of unpriced models` : null },
        dollars(d.cost_usd)))));
  fill($("usage-user-table").tBodies[0], usage.per_user.map((u) =>
    el("tr", { "data-testid": "usage-user-row", "data-user-id": u.user_id ?? "" },
      el("td", { title: u.user_id ?? "" }, u.user_name || u.user_id || "(no user)"),
      el("td", { className: "num" }, number.format(u.runs)),
      el("td", { className: "num" }, number.format(u.input_tokens)),
      el("td", { className: "num" }, number.format(u.output_tokens)),
      el("td", { className: "num" }, dollars(u.cost_usd)),
      el("td", {}, when(u.last_run_at)))));
}

function renderMcp(servers) {
  $("mcp-empty").hidden = servers.length > 0;
  fill($("mcp-status").tBodies[0], servers.map((s) =>
    el("tr", { "data-testid": "mcp-row", "data-server": s.name, "data-ok": String(s.ok) },
      el("td", {}, s.name),
      el("td", {}, s.transport),
      el("td", {}, s.ok ? badge("ok") : el("span", {}, el("span", { className: "status down" }, "unavailable"), " ",
        el("span", { className: "error-text" }, firstLine(s.error)))),
      el("td", { title: s.tools.join(", ") }, s.tools.length <= 4 ? s.tools.join(", ") : `${s.tools.length} tools`),
      el("td", {}, when(s.checked_at)))));
}

// ---- refresh loop --------------------------------------------------------------------

function notify(message, isError = false) {
  const node = isError ? $("status-banner") : $("notice");
  node.textContent = message;
  node.hidden = false;
  if (!isError) setTimeout(() => { node.hidden = true; }, 6000);
}

let timer = null;
let inFlight = null;
let again = false;

// One load at a time; a refresh asked for meanwhile (after a replay) runs right after it.
function refresh() {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  clearTimeout(timer);
  inFlight = load().finally(() => {
    inFlight = null;
    if (again) {
      again = false;
      refresh();
    } else {
      timer = setTimeout(refresh, REFRESH_MS);
    }
  });
  return inFlight;
}

async function load() {
  if (document.hidden) return; // nothing to draw for; visibilitychange reloads
  const days = $("usage-days").value;
  const parts = [
    ["overview", (o) => { renderCounts(o.queue); renderChart(o.minutes); renderLatency(o.latency); }],
    ["events?limit=50", (r) => renderEvents(r.events)],
    ["events?status=failed&limit=100", (r) => renderFailed(r.events)],
    [`usage?days=${encodeURIComponent(days)}`, renderUsage],
    ["mcp", (r) => renderMcp(r.servers)],
  ];
  const results = await Promise.allSettled(parts.map(([path]) => api(path)));
  const problems = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") parts[i][1](result.value);
    else problems.push(result.reason);
  });
  const banner = $("status-banner");
  if (problems.length) {
    const denied = problems.find((p) => p.status === 401);
    banner.textContent = denied
      ? "Signed out: open /dashboard?token=… again, or send the bearer token."
      : `Could not refresh: ${problems[0].message}`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
    $("last-updated").textContent = new Date().toLocaleTimeString();
    $("last-updated").setAttribute("datetime", new Date().toISOString());
  }
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

document.addEventListener("DOMContentLoaded", () => {
  $("refresh-interval").textContent = `· refreshes every ${REFRESH_MS / 1000} s`;
  $("usage-days").addEventListener("change", refresh);
  $("event-detail-close").addEventListener("click", () => $("event-detail").close());
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
});
