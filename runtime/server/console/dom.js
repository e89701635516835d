// Building the page without innerHTML: every value from the server goes in as text.

// h("a", {href: "#/x", class: "y", onclick: fn}, "text", child...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// An ISO time as "2026-01-02 03:04:05" in UTC (what the API and the CLI show), or "".
export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

// Milliseconds as "850 ms", "12.3 s", "4 min 10 s", "3 h 5 min", "14 d 2 h".
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function json(v) {
  return v === undefined ? "" : JSON.stringify(v, null, 2);
}

// A one-line view of a value, cut at n characters.
export function brief(v, n = 80) {
  if (v === null || v === undefined) return "";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function badge(status) {
  return h("span", { class: `badge status-${status || "none"}` }, status || "—");
}

// An error box (role=alert) for an ApiError or any Error.
export function alertBox(err, prefix) {
  const status = err.status ? ` (${err.status})` : "";
  return h("div", { class: "alert", role: "alert" }, `${prefix ? prefix + ": " : ""}${err.message}${status}`);
}
