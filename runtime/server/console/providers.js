// Providers: the adapters as the answering worker's router knows them (GET /v1/providers): each
// provider's breaker (its worst channel's), rate limit and calls by outcome, then its channels.
// Another worker has breakers of its own: the page says which worker answered only by its numbers.
import { api } from "./api.js";
import { h, alertBox } from "./dom.js";

const OUTCOMES = ["ok", "transient", "rejected", "invalid", "circuit_open"];

function breaker(state) {
  return h("span", { class: `badge breaker-${state || "none"}` }, state || "—");
}

function rate(r) {
  if (!r || r.rps === null || r.rps === undefined) return "none";
  return `${r.rps}/s${r.waited ? ` (${r.waited} waited)` : ""}`;
}

function callCells(calls) {
  return OUTCOMES.map((o) => h("td", { class: "num" }, calls && calls[o] ? String(calls[o]) : ""));
}

export async function providersPage(main, _params, page) {
  document.title = "Providers · Spine";
  const body = h("div", { id: "providers" }, "Loading…");
  main.append(h("div", { class: "bar" }, h("h1", {}, "Providers")), body);

  async function load() {
    let data;
    try {
      data = await api("GET", "/v1/providers");
    } catch (e) {
      if (page.alive()) body.replaceChildren(alertBox(e, "Cannot read the providers"));
      return;
    }
    if (!page.alive()) return;
    const items = data.items || [];
    if (!items.length) {
      body.replaceChildren(h("p", { class: "empty" }, "No provider adapters."));
      return;
    }
    const rows = [];
    for (const p of items) {
      rows.push(h("tr", { class: "provider", "data-provider": p.provider },
        h("td", {}, h("strong", {}, p.provider)), h("td", {}, ""),
        h("td", { id: `breaker-${p.provider}` }, breaker(p.breaker)), h("td", {}, rate(p.rate_limit)),
        callCells(p.calls)));
      for (const c of p.channels || [])
        rows.push(h("tr", { class: "channel" }, h("td", {}, ""), h("td", {}, c.channel),
          h("td", {}, breaker(c.breaker)), h("td", {}, ""), callCells(c.calls)));
    }
    body.replaceChildren(h("table", { class: "list", id: "providers-table" },
      h("thead", {}, h("tr", {}, ["provider", "channel", "breaker", "rate limit", ...OUTCOMES]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)),
    h("p", { class: "hint" }, "The numbers are those of the worker that answered, since it started."));
  }
  page.every(load, 5000);
  load();
}
