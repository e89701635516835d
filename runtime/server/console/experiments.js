// Experiments (GET /v1/experiments): per process and variant, the outcome counts as a stacked
// bar and the success rate with its 95 % interval, drawn with SVG elements made by DOM calls
// (classes and SVG attributes only: the policy allows no inline style), and the same as a table.
import { api, withQuery } from "./api.js";
import { h, alertBox } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const OUTCOMES = ["completed", "failed", "compensated", "cancelled", "paused", "stuck", "active"];

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const pct = (x) => (typeof x === "number" ? `${(100 * x).toFixed(1)} %` : "—");
const num = (x) => (typeof x === "number" ? x : 0);

// One row per variant: its label, a bar of its outcomes (shares of started) and below it the
// success rate as a dot on a 0–100 % scale with its interval as a line with whiskers.
function chart(group) {
  const vs = group.variants || [];
  const L = 150; const W = 460; const R = 20; const ROW = 46;
  const height = 24 + ROW * vs.length;
  const x = (f) => L + Math.max(0, Math.min(1, f)) * W;
  const svg = s("svg", { class: "exp-chart", viewBox: `0 0 ${L + W + R} ${height}`, width: L + W + R, height,
    role: "img", "aria-label": `outcomes and success rate per variant of ${group.process}` });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { class: "exp-grid", x1: x(t), x2: x(t), y1: 14, y2: height - 4 }),
      s("text", { class: "exp-tick", x: x(t), y: 10, "text-anchor": "middle" }, `${t * 100}%`));
  }
  vs.forEach((v, i) => {
    const y = 18 + i * ROW;
    const g = s("g", { class: "exp-variant", "data-variant": v.variant });
    g.append(s("text", { class: "exp-label", x: L - 8, y: y + 14, "text-anchor": "end" }, v.variant));
    const started = num(v.started);
    let at = 0;
    for (const o of OUTCOMES) {
      const n = num(v[o]);
      if (!started || !n) continue;
      const w = (n / started) * W;
      g.append(s("rect", { class: `exp-seg status-${o === "active" ? "running" : o}`, x: L + at, y, width: w, height: 14 },
        s("title", {}, `${o}: ${n} of ${started}`)));
      at += w;
    }
    if (!started) g.append(s("text", { class: "exp-tick", x: L + 4, y: y + 11 }, "no cases"));
    const ci = Array.isArray(v.ci95) && v.ci95.length === 2 ? v.ci95 : null;
    const cy = y + 28;
    if (ci) {
      g.append(s("line", { class: "exp-ci", x1: x(ci[0]), x2: x(ci[1]), y1: cy, y2: cy }),
        s("line", { class: "exp-ci", x1: x(ci[0]), x2: x(ci[0]), y1: cy - 5, y2: cy + 5 }),
        s("line", { class: "exp-ci", x1: x(ci[1]), x2: x(ci[1]), y1: cy - 5, y2: cy + 5 }));
    }
    if (typeof v.success_rate === "number") {
      g.append(s("circle", { class: "exp-rate", cx: x(v.success_rate), cy, r: 4 },
        s("title", {}, `success ${pct(v.success_rate)}${ci ? ` [${pct(ci[0])}, ${pct(ci[1])}]` : ""}`)));
    }
    svg.append(g);
  });
  return svg;
}

function vsControl(v, control) {
  if (v.variant === control) return "control";
  const c = v.vs_control;
  if (!c || typeof c !== "object") return "";
  const d = typeof c.difference === "number" ? `${c.difference >= 0 ? "+" : ""}${(100 * c.difference).toFixed(1)} pts` : "";
  const p = typeof c.p_value === "number" ? `, p=${c.p_value.toFixed(3)}` : "";
  return `${d}${p}${c.significant ? " significant" : ""}`;
}

function table(group) {
  return h("table", { class: "list exp-table" },
    h("thead", {}, h("tr", {}, ["variant", "started", ...OUTCOMES, "success [95 % CI]", "median / p95", "vs control"]
      .map((c) => h("th", {}, c)))),
    h("tbody", {}, (group.variants || []).map((v) => {
      const ci = Array.isArray(v.ci95) && v.ci95.length === 2 ? ` [${pct(v.ci95[0])}, ${pct(v.ci95[1])}]` : "";
      const d = v.duration_ms || {};
      return h("tr", { "data-variant": v.variant },
        h("td", {}, v.variant),
        h("td", { class: "num" }, num(v.started)),
        OUTCOMES.map((o) => h("td", { class: "num" }, num(v[o]))),
        h("td", {}, `${pct(v.success_rate)}${ci}`),
        h("td", {}, typeof d.median === "number" ? `${Math.round(d.median)} / ${Math.round(num(d.p95))} ms` : "—"),
        h("td", {}, vsControl(v, group.control)));
    })));
}

export async function experimentsPage(main, _params, page) {
  document.title = "Experiments · Spine";
  const process = h("input", { id: "experiments-process", placeholder: "process" });
  const body = h("div", { id: "experiments" }, "Loading…");
  const form = h("form", { class: "filters" }, h("label", { class: "field" }, "process", process),
    h("button", { type: "submit", class: "secondary", id: "experiments-apply" }, "Show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  main.append(h("div", { class: "bar" }, h("h1", {}, "Experiments")), form, body);

  async function load() {
    let data;
    try {
      data = await api("GET", withQuery("/v1/experiments", { process: process.value.trim() }));
    } catch (e) {
      if (page.alive()) body.replaceChildren(alertBox(e, "Cannot read the experiments"));
      return;
    }
    if (!page.alive()) return;
    const groups = data.items || data.experiments || [];
    if (!groups.length) {
      body.replaceChildren(h("p", { class: "empty" }, "No routed cases."));
      return;
    }
    body.replaceChildren(...groups.map((g) => h("section", { class: "card exp", "data-process": g.process },
      h("h2", {}, g.process, g.experiment ? ` · experiment ${g.experiment}` : ""),
      h("p", { class: "hint" }, "Bars: each variant's cases by outcome, as shares of those started. ",
        "Dot and line: its success rate and 95 % interval."),
      chart(g), table(g))));
  }
  page.every(load, 10000);
  load();
}
