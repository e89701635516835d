// The console's shell: sign-in, navigation and the router (#/cases, #/case/ID, #/incidents,
// #/tasks, #/task/ID, #/experiments, #/outbox).
// A page is a function (main, params, page) that fills `main`; `page.alive()` turns false and
// its timers stop once the operator has gone to another page.
import { token, onUnauthorized } from "./api.js";
import { h } from "./dom.js";
import { casesPage } from "./cases.js";
import { casePage } from "./case.js";
import { incidentsPage } from "./incidents.js";
import { tasksPage, taskPage } from "./tasks.js";
import { experimentsPage } from "./experiments.js";
import { outboxPage } from "./outbox.js";
import { providersPage } from "./providers.js";

const routes = [
  [/^#\/cases(?:\?(.*))?$/, casesPage, "cases"],
  [/^#\/case\/([^/?]+)$/, casePage, "cases"],
  [/^#\/incidents$/, incidentsPage, "incidents"],
  [/^#\/tasks$/, tasksPage, "tasks"],
  [/^#\/task\/([^/?]+)$/, taskPage, "tasks"],
  [/^#\/experiments$/, experimentsPage, "experiments"],
  [/^#\/outbox$/, outboxPage, "outbox"],
  [/^#\/providers$/, providersPage, "providers"],
];

// Why the sign-in page shows (a refused token), kept in the tab so a reload still says it.
const REASON = "spine.signin_reason";
const reason = {
  get: () => sessionStorage.getItem(REASON) || "",
  set: (r) => (r ? sessionStorage.setItem(REASON, r) : sessionStorage.removeItem(REASON)),
};
let current = null; // the page on screen: {alive, timers}

onUnauthorized((msg) => {
  reason.set(`The server refused the token (401: ${msg}). Sign in again.`);
  render();
});

function stopPage() {
  if (!current) return;
  current.dead = true;
  for (const t of current.timers) clearInterval(t);
  current = null;
}

function newPage() {
  const page = {
    dead: false,
    timers: [],
    alive: () => !page.dead,
    every(fn, ms) {
      page.timers.push(setInterval(() => page.alive() && fn(), ms));
    },
  };
  current = page;
  return page;
}

function signIn(main) {
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "spn_…", required: true,
  });
  const why = reason.get();
  const msg = h("p", { id: "signin-reason", class: why ? "alert" : "hint", role: "alert" },
    why || "Paste an API token. It stays in this tab only (sessionStorage) and is sent as a bearer header.");
  const form = h("form", { id: "signin", class: "card signin" },
    h("h1", {}, "Sign in to Spine"),
    msg,
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit", id: "signin-submit" }, "Sign in"),
    h("p", { class: "hint" }, "Create one with ",
      h("code", {}, "spine tokens create --subject ops:you --scopes workflows:read"),
      " (add workflows:operate to act on cases)."));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    token.set(t);
    reason.set("");
    if (!location.hash || location.hash === "#/" || location.hash === "#/signin") location.hash = "#/cases";
    else render();
  });
  main.append(form);
  input.focus();
}

function render() {
  stopPage();
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const out = document.getElementById("signout");
  main.replaceChildren();
  if (!token.get()) {
    nav.hidden = true;
    out.hidden = true;
    document.title = "Sign in · Spine";
    signIn(main);
    return;
  }
  nav.hidden = false;
  out.hidden = false;
  const hash = location.hash || "#/cases";
  for (const [re, fn, section] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.page === section);
    fn(main, m.slice(1), newPage());
    return;
  }
  location.replace("#/cases");
}

document.getElementById("signout").addEventListener("click", () => {
  token.clear();
  reason.set("Signed out.");
  render();
});
window.addEventListener("hashchange", render);
render();

