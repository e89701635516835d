// Incidents: workflows paused on a provider that gave up (GET /v1/incidents).
import { api, withQuery } from "./api.js";
import { h, time, brief, alertBox } from "./dom.js";

export async function incidentsPage(main, _params, page) {
  document.title = "Incidents · Spine";
  const all = h("input", { type: "checkbox", id: "incidents-all" });
  const body = h("div", { id: "incidents" }, "Loading…");
  main.append(h("div", { class: "bar" }, h("h1", {}, "Incidents"), h("span", { class: "spacer" }),
    h("label", { class: "check" }, all, " resolved ones too")), body);

  async function load() {
    let data;
    try {
      data = await api("GET", withQuery("/v1/incidents", { all: all.checked ? "true" : "" }));
    } catch (e) {
      if (page.alive()) body.replaceChildren(alertBox(e, "Cannot list incidents"));
      return;
    }
    if (!page.alive()) return;
    const items = data.items || [];
    if (!items.length) {
      body.replaceChildren(h("p", { class: "empty" }, all.checked ? "No incidents." : "No open incidents."));
      return;
    }
    body.replaceChildren(h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["opened", "workflow", "process", "step", "kind", "attempts", "error", "resolved"]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((n) => h("tr", {},
        h("td", {}, time(n.created_at)),
        h("td", {}, h("a", { href: `#/case/${encodeURIComponent(n.workflow_id)}`, class: "mono" }, n.workflow_id)),
        h("td", {}, n.process || ""),
        h("td", {}, `${n.seq ?? ""} ${n.step || ""}`),
        h("td", {}, n.kind || ""),
        h("td", { class: "num" }, n.attempts ?? ""),
        h("td", { class: "err", title: brief(n.error, 2000) }, brief(n.error && (n.error.message || n.error), 90)),
        h("td", {}, n.resolved_at ? `${time(n.resolved_at)} ${brief(n.resolution, 40)}` : "open"))))));
  }
  all.addEventListener("change", load);
  page.every(load, 5000);
  load();
}
