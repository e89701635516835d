// A case: the explain sentence, the facts, the actions (signal, cancel, retry, skip) and the
// timeline of its steps (GET /v1/workflows/{id}), compensations in their own lane. It follows
// the workflow every few seconds until it has ended.
import { api, whoami, may } from "./api.js";
import { h, time, duration, json, brief, badge, alertBox } from "./dom.js";

const ENDED = ["completed", "failed", "compensated", "cancelled"];

// Which actions a status allows (the server decides; these only hide what would be refused 409).
const ACTIONS = {
  signal: (s) => !ENDED.includes(s),
  cancel: (s) => ["pending", "running", "waiting", "paused"].includes(s),
  retry: (s) => ["stuck", "paused", "failed"].includes(s),
  skip: (s) => ["paused", "stuck"].includes(s),
};

const ms = (iso) => (iso ? new Date(iso).getTime() : NaN);

// The main lane and the compensation lane: a saga's compensations run after its failure, each
// a "compensate" step followed by the steps of its undo.
function lanes(steps) {
  const main = [];
  const comp = [];
  let compensating = false;
  for (const s of steps) {
    if (s.kind === "compensate") compensating = true;
    (compensating ? comp : main).push(s);
  }
  return { main, comp };
}

function what(s, wf) {
  if (s.status === "waiting" || s.kind === "wait" || s.kind === "sleep") {
    const until = s.wake_at ? ` until ${time(s.wake_at)}` : "";
    if (s.kind === "sleep") return `sleeps${until}`;
    if (s.kind === "wait") return `waits for signal "${s.name}"${until}`;
    const w = wf.waiting_for && s.status === "waiting" ? ` for ${wf.waiting_for.kind} ${wf.waiting_for.name || ""}` : "";
    return `waits${w}${until}`;
  }
  return "";
}

function outcome(s) {
  if (s.error) {
    return h("details", { class: "err" }, h("summary", {}, brief(s.error.message || s.error, 70)),
      h("pre", {}, json(s.error)));
  }
  if (s.result === null || s.result === undefined) return "";
  const b = brief(s.result, 70);
  return b.length < 40 ? h("code", {}, b) : h("details", {}, h("summary", {}, b), h("pre", {}, json(s.result)));
}

// One lane as a table; each row has a bar placed on the case's span [t0, t1].
function laneTable(id, steps, wf, t0, t1) {
  const span = Math.max(t1 - t0, 1);
  return h("table", { class: "timeline", id },
    h("thead", {}, h("tr", {}, ["#", "step", "kind", "status", "started", "ended", "duration", "attempts", "", "result or error"]
      .map((c) => h("th", {}, c)))),
    h("tbody", {}, steps.map((s) => {
      const a = ms(s.started_at);
      const endKnown = !Number.isNaN(ms(s.ended_at));
      const b = endKnown ? ms(s.ended_at) : s.status === "waiting" && s.wake_at ? ms(s.wake_at) : Date.now();
      const bar = h("span", { class: `tbar status-${s.status}` });
      if (!Number.isNaN(a)) {
        // CSSOM, not a style attribute: the policy allows no inline style.
        bar.style.left = `${(100 * (a - t0)) / span}%`;
        bar.style.width = `${Math.max((100 * (b - a)) / span, 0.5)}%`;
      }
      const wait = what(s, wf);
      return h("tr", { class: `step step-${s.kind}`, "data-seq": s.seq },
        h("td", { class: "num" }, s.seq),
        h("td", { class: "name" }, s.name, wait ? h("div", { class: "wait" }, wait) : ""),
        h("td", {}, s.kind),
        h("td", {}, badge(s.status)),
        h("td", { class: "t" }, time(s.started_at)),
        h("td", { class: "t" }, time(s.ended_at)),
        h("td", { class: "num" }, endKnown && !Number.isNaN(a) ? duration(b - a) : ""),
        h("td", { class: "num" }, s.attempt ?? ""),
        h("td", { class: "track" }, bar),
        h("td", { class: "out" }, outcome(s)));
    })));
}

function timeline(wf) {
  const steps = wf.steps || [];
  if (!steps.length) return h("p", { class: "empty" }, "No step yet.");
  const starts = steps.map((s) => ms(s.started_at)).filter((t) => !Number.isNaN(t));
  const ends = steps.map((s) => ms(s.ended_at) || ms(s.wake_at)).filter((t) => !Number.isNaN(t));
  const t0 = Math.min(...starts, ms(wf.created_at) || Infinity);
  const t1 = Math.max(...ends, ...starts, ENDED.includes(wf.status) ? -Infinity : Date.now());
  const { main, comp } = lanes(steps);
  return h("div", {},
    h("h2", {}, "Steps"), laneTable("lane-steps", main, wf, t0, t1),
    comp.length ? [h("h2", {}, "Compensations"), laneTable("lane-compensations", comp, wf, t0, t1)] : "");
}

function facts(wf) {
  const row = (k, v) => (v === null || v === undefined || v === "" ? "" : [h("dt", {}, k), h("dd", {}, v)]);
  const wait = wf.waiting_for
    ? Object.entries(wf.waiting_for).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")
    : "";
  return h("dl", { class: "facts" },
    row("status", badge(wf.status)), row("process", wf.process), row("playbook", wf.playbook),
    row("version", wf.version && wf.version.slice(0, 12)), row("subject", wf.subject),
    row("variant", wf.variant), row("experiment", wf.experiment), row("state", wf.state),
    row("waiting for", wait), row("attempt", wf.attempt), row("created", time(wf.created_at)),
    row("updated", time(wf.updated_at)), row("ended", time(wf.ended_at)),
    row("cancelled by", wf.cancelled_by), row("retried by", wf.retried_by));
}

function data(wf) {
  const block = (title, v, open) => (v === null || v === undefined ? "" :
    h("details", { class: "data", open }, h("summary", {}, title), h("pre", {}, json(v))));
  return h("div", {}, block("Error", wf.error, true), block("Result", wf.result, false),
    block("Input", wf.input, false),
    wf.attributes && Object.keys(wf.attributes).length ? block("Attributes", wf.attributes, false) : "");
}

function parseJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not JSON: ${e.message}`);
  }
}

function actions(wf, refresh, me) {
  const msg = h("div", { id: "action-message", role: "status" });
  if (me && !may(me, "workflows:operate"))
    return h("section", { class: "card" }, h("h2", {}, "Actions"),
      h("p", { class: "hint", id: "actions-read-only" },
        `Signed in as ${me.subject}, who may read only: acting on a case needs the scope workflows:operate.`));
  const id = encodeURIComponent(wf.id);
  async function act(name, path, body, done) {
    msg.replaceChildren();
    try {
      await api("POST", `/v1/workflows/${id}/${path}`, body);
      msg.replaceChildren(h("div", { class: "ok" }, `${name}: done.`));
      if (done) done();
      refresh();
    } catch (e) {
      if (e.status === 401) return;
      const why = e.status === 403 ? "not allowed for this token" : e.status === 409 ? "not in this status" : "refused";
      msg.replaceChildren(alertBox(e, `${name} ${why}`));
    }
  }
  const s = wf.status;
  const box = h("div", { class: "actions", id: "actions" });
  if (ACTIONS.cancel(s)) {
    const btn = h("button", { type: "button", id: "action-cancel", class: "danger" }, "Cancel case");
    btn.addEventListener("click", () => {
      if (btn.dataset.armed) return act("Cancel", "cancel", undefined);
      btn.dataset.armed = "1";
      btn.textContent = "Confirm cancel";
      btn.id = "action-cancel-confirm";
    });
    box.append(btn);
  }
  if (ACTIONS.retry(s)) box.append(h("button", { type: "button", id: "action-retry", onclick: () => act("Retry", "retry") }, "Retry"));
  if (ACTIONS.signal(s)) {
    const name = h("input", { id: "signal-name", placeholder: "signal name", required: true,
      value: wf.waiting_for && wf.waiting_for.kind === "signal" ? wf.waiting_for.name || "" : "" });
    const body = h("input", { id: "signal-data", placeholder: '{"value": …} (optional JSON)' });
    const form = h("form", { class: "inline", id: "signal-form" }, name, body, h("button", { type: "submit" }, "Send signal"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      let d;
      try {
        d = parseJson(body.value, "the signal's data");
      } catch (e) {
        return msg.replaceChildren(alertBox(e));
      }
      act("Signal", "signal", d === undefined ? { name: name.value.trim() } : { name: name.value.trim(), data: d });
    });
    box.append(form);
  }
  if (ACTIONS.skip(s)) {
    const result = h("input", { id: "skip-result", placeholder: "result JSON for the failing step" });
    const form = h("form", { class: "inline", id: "skip-form" }, result, h("button", { type: "submit" }, "Skip step"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      let r;
      try {
        r = parseJson(result.value, "the result");
      } catch (e) {
        return msg.replaceChildren(alertBox(e));
      }
      act("Skip", "skip", r === undefined ? {} : { result: r });
    });
    box.append(form);
  }
  if (!box.childNodes.length) box.append(h("p", { class: "hint" }, `No action applies to a ${s} case.`));
  return h("section", { class: "card" }, h("h2", {}, "Actions"), box, msg);
}

export async function casePage(main, [rawId], page) {
  const id = decodeURIComponent(rawId);
  document.title = `Case ${id.slice(0, 8)} · Spine`;
  const head = h("div", { class: "bar" }, h("a", { href: "#/cases", class: "back" }, "← Cases"),
    h("h1", {}, "Case ", h("span", { class: "mono", id: "case-id" }, id)));
  const explain = h("p", { class: "explain", id: "explain" });
  const body = h("div", { id: "case" }, "Loading…");
  main.append(head, explain, body);
  let lastStatus = null;
  let actionsEl = null;

  async function load() {
    const path = `/v1/workflows/${encodeURIComponent(id)}`;
    let wf, ex, me;
    try {
      [wf, ex, me] = await Promise.all([api("GET", path), api("GET", `${path}/explain`).catch((e) => e),
        whoami().catch(() => null)]);
    } catch (e) {
      if (page.alive()) body.replaceChildren(alertBox(e, e.status === 404 ? "No such case" : "Cannot read the case"));
      return;
    }
    if (!page.alive()) return;
    explain.textContent = ex instanceof Error ? `(no explanation: ${ex.message})` : ex.explanation || "";
    // The actions keep what the operator typed unless the status moved.
    if (!actionsEl || lastStatus !== wf.status) actionsEl = actions(wf, load, me);
    lastStatus = wf.status;
    body.replaceChildren(h("div", { class: "grid" }, h("section", { class: "card" }, facts(wf), data(wf)), actionsEl),
      h("section", { class: "card" }, timeline(wf)));
    body.dataset.status = wf.status;
  }
  await load();
  page.every(() => {
    if (!ENDED.includes(lastStatus)) load();
  }, 2000);
}
