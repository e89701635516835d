// Cases: the workflow list (GET /v1/workflows) with the API's filters, paged by cursor, and the
// counts by status, process and variant under the same filters (GET /v1/workflows/counts),
// refreshed every few seconds. The filters live in
// the address (#/cases?status=waiting&process=...), so a view can be shared or reloaded.
import { api, withQuery } from "./api.js";
import { h, time, brief, badge, alertBox } from "./dom.js";

export const STATUSES = ["pending", "running", "waiting", "paused", "stuck", "failed", "completed",
  "compensated", "cancelled"];
const FILTERS = ["status", "process", "variant", "state", "created_after", "created_before"];
const PAGE = 50;

function go(params) {
  const q = new URLSearchParams();
  for (const k of [...FILTERS, "cursor"]) if (params[k]) q.set(k, params[k]);
  const s = q.toString();
  location.hash = s ? `#/cases?${s}` : "#/cases";
}

// datetime-local ("2026-01-02T03:04", taken as UTC) <-> ISO 8601
const toIso = (v) => (v ? `${v}:00Z` : "");
const fromIso = (v) => (v ? v.replace(/(:\d\d)?(\.\d+)?Z$/, "").slice(0, 16) : "");

function filterForm(params) {
  const field = (name, label, input) => h("label", { class: "field" }, h("span", {}, label), input);
  const text = (name, ph) => h("input", { name, id: `filter-${name}`, value: params[name] || "", placeholder: ph });
  const status = h("select", { name: "status", id: "filter-status" },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: params.status === s }, s)));
  const after = h("input", { type: "datetime-local", name: "created_after", id: "filter-created_after", value: fromIso(params.created_after) });
  const before = h("input", { type: "datetime-local", name: "created_before", id: "filter-created_before", value: fromIso(params.created_before) });
  const form = h("form", { class: "filters", id: "filters" },
    field("status", "Status", status),
    field("process", "Process", text("process", "any")),
    field("variant", "Variant", text("variant", "any")),
    field("state", "State", text("state", "any")),
    field("created_after", "Created after (UTC)", after),
    field("created_before", "Created before (UTC)", before),
    h("div", { class: "buttons" },
      h("button", { type: "submit", id: "filter-apply" }, "Filter"),
      h("button", { type: "button", class: "secondary", onclick: () => go({}) }, "Clear")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    go({
      status: f.get("status"), process: f.get("process").trim(), variant: f.get("variant").trim(),
      state: f.get("state").trim(), created_after: toIso(f.get("created_after")),
      created_before: toIso(f.get("created_before")),
    });
  });
  return form;
}

function openById() {
  const input = h("input", { id: "open-id", placeholder: "workflow id", spellcheck: "false" });
  const form = h("form", { class: "open-id" }, input, h("button", { type: "submit" }, "Open case"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = input.value.trim();
    if (id) location.hash = `#/case/${encodeURIComponent(id)}`;
  });
  return form;
}

// The counts under the other filters (GET /v1/workflows/counts, one query): by status, which
// filter the list when clicked, and by process and variant.
async function counts(params, el, page) {
  const base = {};
  for (const k of FILTERS) if (k !== "status" && params[k]) base[k] = params[k];
  let items;
  try {
    items = (await api("GET", withQuery("/v1/workflows/counts", base))).items || [];
  } catch (e) {
    if (page.alive()) el.replaceChildren(alertBox(e, "Cannot count cases"));
    return;
  }
  if (!page.alive()) return;
  const byStatus = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  const byVariant = new Map(); // "process\u0000variant" -> {process, variant, status -> n}
  for (const it of items) {
    byStatus[it.status] = (byStatus[it.status] || 0) + it.count;
    const key = `${it.process}\u0000${it.variant || ""}`;
    if (!byVariant.has(key)) byVariant.set(key, { process: it.process, variant: it.variant || "", n: {} });
    byVariant.get(key).n[it.status] = it.count;
  }
  const chips = h("div", { class: "chips" }, STATUSES.map((s) => h("a", {
    class: `count status-${s}${params.status === s ? " active" : ""}`, id: `count-${s}`,
    href: "#", onclick: (ev) => { ev.preventDefault(); go({ ...params, cursor: "", status: params.status === s ? "" : s }); },
  }, h("span", { class: "n" }, String(byStatus[s])), h("span", {}, s))));
  const rows = [...byVariant.values()].sort((a, b) =>
    a.process.localeCompare(b.process) || a.variant.localeCompare(b.variant));
  const table = rows.length
    ? h("table", { class: "list counts-table", id: "counts-by-variant" },
      h("thead", {}, h("tr", {}, ["process", "variant", ...STATUSES].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {},
        h("td", {}, r.process), h("td", {}, r.variant),
        STATUSES.map((s) => h("td", { class: "num" }, r.n[s] ? String(r.n[s]) : ""))))))
    : "";
  el.replaceChildren(chips, table);
}

function row(w) {
  const wait = w.waiting_for ? `${w.waiting_for.kind || ""} ${w.waiting_for.name || ""}`.trim() : "";
  return h("tr", { "data-id": w.id },
    h("td", {}, h("a", { href: `#/case/${encodeURIComponent(w.id)}`, class: "mono case-link", title: w.id }, w.id)),
    h("td", { class: "subject" }, w.subject || ""),
    h("td", {}, w.process || ""),
    h("td", {}, w.variant || ""),
    h("td", {}, badge(w.status)),
    h("td", {}, w.state || ""),
    h("td", {}, wait),
    h("td", {}, time(w.created_at)),
    h("td", {}, time(w.updated_at)),
    h("td", { class: "err" }, brief(w.error && (w.error.message || w.error), 60)));
}

export async function casesPage(main, [query], page) {
  document.title = "Cases · Spine";
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  const countsEl = h("div", { class: "counts", id: "counts" });
  const list = h("div", { id: "cases" }, "Loading…");
  const pager = h("div", { class: "pager" });
  main.append(
    h("div", { class: "bar" }, h("h1", {}, "Cases"), h("span", { class: "spacer" }), openById()),
    filterForm(params), countsEl, list, pager);

  async function load() {
    const q = { limit: PAGE, cursor: params.cursor };
    for (const k of FILTERS) q[k] = params[k];
    let data;
    try {
      data = await api("GET", withQuery("/v1/workflows", q));
    } catch (e) {
      if (page.alive()) list.replaceChildren(alertBox(e, "Cannot list cases"));
      return;
    }
    if (!page.alive()) return;
    const items = data.items || [];
    list.replaceChildren(items.length
      ? h("table", { class: "list", id: "cases-table" },
        h("thead", {}, h("tr", {}, ["id", "subject", "process", "variant", "status", "state", "waiting for", "created", "updated", "error"]
          .map((c) => h("th", {}, c)))),
        h("tbody", {}, items.map(row)))
      : h("p", { class: "empty" }, "No case matches these filters."));
    pager.replaceChildren(
      params.cursor ? h("button", { type: "button", class: "secondary", onclick: () => history.back() }, "← Previous") : "",
      data.next_cursor ? h("button", { type: "button", id: "next-page", onclick: () => go({ ...params, cursor: data.next_cursor }) }, "Next page →") : "");
  }
  load();
  counts(params, countsEl, page);
  // Live: the counts and the first page follow what the workers do.
  page.every(() => {
    counts(params, countsEl, page);
    if (!params.cursor) load();
  }, 5000);
}
