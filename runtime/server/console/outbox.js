// The outbox: each subscriber's pending, delivered and dead deliveries (GET
// /v1/outbox/subscribers) and the dead letters (GET /v1/outbox/dead), each with a button that
// puts it back in line (POST /v1/outbox/dead/{event_id}/redeliver, scope workflows:operate).
import { api, withQuery } from "./api.js";
import { h, time, brief, alertBox } from "./dom.js";

export async function outboxPage(main, _params, page) {
  document.title = "Outbox · Spine";
  const subs = h("div", { id: "outbox-subscribers" }, "Loading…");
  const dead = h("div", { id: "outbox-dead" }, "Loading…");
  const msg = h("div", { id: "outbox-message", role: "status" });
  main.append(h("div", { class: "bar" }, h("h1", {}, "Outbox")),
    h("h2", {}, "Subscribers"), subs, h("h2", {}, "Dead letters"), msg, dead);

  async function redeliver(d) {
    try {
      const r = await api("POST", `/v1/outbox/dead/${encodeURIComponent(d.event_id)}/redeliver`, { subscriber: d.subscriber });
      msg.replaceChildren(h("span", { class: "ok" },
        `Event ${d.event_id} back in line for ${d.subscriber} (${r.requeued ?? 0} delivery).`));
    } catch (e) {
      msg.replaceChildren(alertBox(e, "Cannot redeliver"));
    }
    if (page.alive()) load();
  }

  async function load() {
    let s;
    let dl;
    try {
      [s, dl] = await Promise.all([api("GET", "/v1/outbox/subscribers"),
        api("GET", withQuery("/v1/outbox/dead", { limit: 100 }))]);
    } catch (e) {
      if (page.alive()) subs.replaceChildren(alertBox(e, "Cannot read the outbox"));
      return;
    }
    if (!page.alive()) return;
    const items = s.items || [];
    subs.replaceChildren(items.length ? h("table", { class: "list", id: "subscribers-table" },
      h("thead", {}, h("tr", {}, ["subscriber", "kind", "url", "events", "enabled", "pending", "delivered", "dead", "oldest pending"]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((x) => h("tr", { "data-name": x.name },
        h("td", {}, x.name), h("td", {}, x.kind || ""), h("td", { class: "mono" }, x.url || ""),
        h("td", {}, x.events ? x.events.join(", ") : "all"), h("td", {}, x.enabled === false ? "no" : "yes"),
        h("td", { class: "num" }, x.pending ?? 0), h("td", { class: "num" }, x.delivered ?? 0),
        h("td", { class: "num" }, x.dead ?? 0), h("td", { class: "t" }, time(x.oldest_pending_at))))))
      : h("p", { class: "empty" }, "No subscribers."));
    const letters = dl.items || [];
    dead.replaceChildren(letters.length ? h("table", { class: "list", id: "dead-table" },
      h("thead", {}, h("tr", {}, ["event", "subscriber", "type", "ordering key", "customer", "attempts", "last error", "created", ""]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, letters.map((d) => h("tr", { "data-event": d.event_id, "data-subscriber": d.subscriber },
        h("td", { class: "num" }, d.event_id), h("td", {}, d.subscriber), h("td", {}, d.type || ""),
        h("td", { class: "mono" }, d.ordering_key || ""), h("td", {}, d.customer_id || ""),
        h("td", { class: "num" }, d.attempts ?? ""),
        h("td", { class: "err", title: brief(d.last_error, 2000) }, brief(d.last_error, 80)),
        h("td", { class: "t" }, time(d.created_at)),
        h("td", {}, h("button", { type: "button", class: "secondary dead-redeliver", onclick: () => redeliver(d) }, "Redeliver"))))))
      : h("p", { class: "empty" }, "No dead letters."));
  }
  page.every(load, 5000);
  load();
}
