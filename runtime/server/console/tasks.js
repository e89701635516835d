// Tasks: the inbox of open human tasks (GET /v1/tasks) with a claim button, and a task's page
// (GET /v1/tasks/{id}) whose form is built from its kind's declared form: a select for the
// outcome, one input per field by its type. Resolving posts {outcome, data}; a 400 shows the
// message next to the field it names, a 409 (claimed by someone else) above the form.
import { api, withQuery } from "./api.js";
import { h, time, json, alertBox } from "./dom.js";

const taskHref = (id) => `#/task/${encodeURIComponent(id)}`;
const caseHref = (id) => `#/case/${encodeURIComponent(id)}`;

async function claim(id, msg) {
  try {
    const t = await api("POST", `/v1/tasks/${encodeURIComponent(id)}/claim`);
    msg.replaceChildren(h("span", { class: "ok" }, `Claimed by ${t.assignee || "you"}.`));
    return true;
  } catch (e) {
    msg.replaceChildren(alertBox(e, "Cannot claim"));
    return false;
  }
}

export async function tasksPage(main, _params, page) {
  document.title = "Tasks · Spine";
  const kind = h("input", { id: "tasks-kind", placeholder: "kind" });
  const assignee = h("input", { id: "tasks-assignee", placeholder: "assignee (subject)" });
  const msg = h("div", { id: "tasks-message", role: "status" });
  const body = h("div", { id: "tasks" }, "Loading…");
  const filters = h("form", { class: "filters", id: "tasks-filters" },
    h("label", { class: "field" }, "kind", kind),
    h("label", { class: "field" }, "assignee", assignee),
    h("button", { type: "submit", class: "secondary", id: "tasks-apply" }, "Filter"));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  main.append(h("div", { class: "bar" }, h("h1", {}, "Open tasks")), filters, msg, body);

  async function load() {
    let data;
    try {
      data = await api("GET", withQuery("/v1/tasks", { kind: kind.value.trim(), assignee: assignee.value.trim(), limit: 100 }));
    } catch (e) {
      if (page.alive()) body.replaceChildren(alertBox(e, "Cannot list tasks"));
      return;
    }
    if (!page.alive()) return;
    const items = data.items || [];
    if (!items.length) {
      body.replaceChildren(h("p", { class: "empty" }, "No open tasks."));
      return;
    }
    body.replaceChildren(h("table", { class: "list", id: "tasks-table" },
      h("thead", {}, h("tr", {}, ["task", "kind", "subject", "assignee", "due", "opened", "case", ""]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map((t) => h("tr", { "data-id": t.task_id },
        h("td", {}, h("a", { href: taskHref(t.task_id), class: "mono task-link" }, t.task_id)),
        h("td", {}, t.kind || ""),
        h("td", {}, t.subject || ""),
        h("td", { class: "assignee" }, t.assignee || h("span", { class: "empty" }, "unclaimed")),
        h("td", { class: "t" }, time(t.due)),
        h("td", { class: "t" }, time(t.created_at)),
        h("td", {}, t.workflow_id ? h("a", { href: caseHref(t.workflow_id), class: "mono" }, t.workflow_id) : ""),
        h("td", {}, h("button", {
          type: "button", class: "secondary task-claim",
          onclick: async () => (await claim(t.task_id, msg)) && page.alive() && load(),
        }, "Claim")))))));
  }
  page.every(load, 5000);
  load();
}

// One input for a declared field {type, required}: text, number, a checkbox, or JSON.
function fieldInput(name, spec) {
  const id = `task-field-${name}`;
  const type = spec.type || "string";
  if (type === "boolean") return h("input", { id, name, type: "checkbox", "data-type": type });
  if (type === "integer" || type === "number") {
    return h("input", { id, name, type: "number", step: type === "integer" ? "1" : "any", "data-type": type });
  }
  if (type === "string") return h("input", { id, name, type: "text", "data-type": type, autocomplete: "off" });
  return h("textarea", { id, name, rows: 3, "data-type": type, placeholder: `${type} as JSON` });
}

// The value of a field's input, or undefined when left empty; throws on bad JSON.
function fieldValue(el) {
  const type = el.dataset.type;
  if (type === "boolean") return el.checked;
  const v = el.value.trim();
  if (v === "") return undefined;
  if (type === "integer" || type === "number") return Number(v);
  if (type === "string") return el.value;
  return JSON.parse(v);
}

export async function taskPage(main, params, page) {
  const id = decodeURIComponent(params[0]);
  document.title = `Task ${id} · Spine`;
  let t;
  try {
    t = await api("GET", `/v1/tasks/${encodeURIComponent(id)}`);
  } catch (e) {
    main.append(h("p", { class: "back" }, h("a", { href: "#/tasks" }, "← tasks")), alertBox(e, "Cannot load the task"));
    return;
  }
  if (!page.alive()) return;
  const form = t.form || { outcomes: [], fields: {} };
  const msg = h("div", { id: "task-message", role: "status" });
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "kind"), h("dd", {}, t.kind || ""),
    h("dt", {}, "subject"), h("dd", {}, t.subject || ""),
    h("dt", {}, "status"), h("dd", { id: "task-status" }, t.status || ""),
    h("dt", {}, "assignee"), h("dd", { id: "task-assignee" }, t.assignee || "unclaimed"),
    h("dt", {}, "due"), h("dd", {}, time(t.due) || "—"),
    h("dt", {}, "opened"), h("dd", {}, time(t.created_at)),
    h("dt", {}, "case"), h("dd", {}, t.workflow_id ? h("a", { href: caseHref(t.workflow_id), class: "mono" }, t.workflow_id) : "—"));
  const errors = {};
  const errorSpan = (name) => (errors[name] = h("span", { class: "field-error", id: `task-error-${name}`, role: "alert" }));

  const outcomes = form.outcomes || [];
  const outcome = h("select", { id: "task-outcome", name: "outcome", "aria-required": "true" },
    h("option", { value: "" }, "— choose —"), outcomes.map((o) => h("option", { value: o }, o)));
  const rows = [h("div", { class: "form-row" },
    h("label", { for: "task-outcome" }, "outcome", h("span", { class: "req", title: "required" }, " *")),
    outcome, errorSpan("outcome"))];
  const inputs = {};
  for (const [name, spec] of Object.entries(form.fields || {})) {
    const s = spec || {};
    const input = fieldInput(name, s);
    if (s.required) input.setAttribute("aria-required", "true");
    inputs[name] = input;
    rows.push(h("div", { class: "form-row" },
      h("label", { for: input.id }, name, s.required ? h("span", { class: "req", title: "required" }, " *") : "",
        h("span", { class: "hint" }, ` (${s.type || "string"})`)),
      input, errorSpan(name)));
  }
  const submit = h("button", { type: "submit", id: "task-resolve" }, "Resolve");
  const claimBtn = h("button", { type: "button", class: "secondary", id: "task-claim" }, "Claim");
  const el = h("form", { id: "task-form", class: "card task-form", novalidate: true },
    h("h2", {}, "Answer"), form.description ? h("p", { class: "hint" }, form.description) : "",
    rows, h("div", { class: "buttons" }, submit, claimBtn),
    h("p", { class: "hint" }, h("span", { class: "req" }, "*"), " required"));

  claimBtn.addEventListener("click", async () => {
    if (await claim(id, msg)) {
      try {
        const now = await api("GET", `/v1/tasks/${encodeURIComponent(id)}`);
        document.getElementById("task-assignee").textContent = now.assignee || "unclaimed";
      } catch (e) { /* the message already says it */ }
    }
  });

  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const s of Object.values(errors)) s.replaceChildren();
    msg.replaceChildren();
    const data = {};
    try {
      for (const [name, input] of Object.entries(inputs)) {
        const v = fieldValue(input);
        if (v !== undefined) data[name] = v;
      }
    } catch (e) {
      msg.replaceChildren(alertBox(e, "Not JSON"));
      return;
    }
    const body = { data };
    if (outcome.value) body.outcome = outcome.value;
    submit.disabled = true;
    try {
      const done = await api("POST", `/v1/tasks/${encodeURIComponent(id)}/resolve`, body);
      if (!page.alive()) return;
      document.getElementById("task-status").textContent = done.status || "resolved";
      el.hidden = true;
      msg.replaceChildren(h("div", { class: "ok resolved" }, `Resolved as "${done.outcome || body.outcome}". `,
        done.workflow_id || t.workflow_id
          ? ["The case continues: ", h("a", { id: "task-workflow-link", href: caseHref(done.workflow_id || t.workflow_id), class: "mono" },
            done.workflow_id || t.workflow_id)]
          : ""));
    } catch (e) {
      if (!page.alive()) return;
      submit.disabled = false;
      const field = (e.field || "").replace(/^data\./, "");
      if (e.status === 400 && errors[field]) errors[field].replaceChildren(`${e.message}`);
      else if (e.status === 409) msg.replaceChildren(alertBox(e, "Not yours to answer"));
      else msg.replaceChildren(alertBox(e, "Cannot resolve"));
    }
  });

  main.append(h("p", { class: "back" }, h("a", { href: "#/tasks" }, "← tasks")),
    h("div", { class: "bar" }, h("h1", {}, `Task ${t.kind || ""}`), h("span", { class: "mono" }, t.task_id)),
    h("div", { class: "grid", id: "task", "data-status": t.status },
      h("div", {}, msg, t.status === "open" ? el : h("p", { class: "empty" }, `This task is ${t.status}.`)),
      h("div", { class: "card" }, facts, h("h2", {}, "data"), h("pre", {}, json(t.data)))));
  outcome.focus();
}
