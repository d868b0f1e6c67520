// The dashboard: a hash router over a few views. Each view fetches what it shows and renders it with
// dom.js; buttons exist only when the signed-in role may use them (the API enforces it regardless).

import { api, all, ApiError, token } from "./api.js";
import { h, icon, mount, statusBadge, toast, when } from "./dom.js";
import { experimentView, resultView, stopPolling } from "./experiment.js";
import { experimentFormView } from "./experiment-form.js";
import { fisImportView } from "./fis-import.js";
import { targetFormView, targetsView } from "./targets.js";
import { auditView, notificationsView } from "./admin.js";

const ROLES = { viewer: 1, operator: 2, admin: 3 };
const state = { me: null };
const main = document.getElementById("main");

const can = (role) => state.me && ROLES[state.me.role] >= ROLES[role];

function errorAlert(err) {
  return h("div", { class: "alert alert-danger", role: "alert" }, icon("x-octagon"), " ", err.message || String(err));
}

function loading() {
  return h("div", { class: "text-secondary py-4", role: "status" },
    h("span", { class: "spinner-border spinner-border-sm me-2", "aria-hidden": "true" }), "Loading…");
}

// ---- sign in -------------------------------------------------------------------------------------

function signInView(message) {
  const input = h("textarea", {
    class: "form-control token-input", id: "token", name: "token", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "token-help",
  });
  const feedback = h("div", { class: "invalid-feedback", id: "token-feedback" });
  const form = h("form", { class: "signin mx-auto mt-4", novalidate: true, id: "signin-form" },
    h("h1", { class: "h3 mb-3" }, "Sign in"),
    message ? h("div", { class: "alert alert-warning" }, message) : null,
    h("label", { class: "form-label", for: "token" }, "API token"),
    input,
    feedback,
    h("div", { class: "form-text", id: "token-help" },
      "Paste a bearer token (", h("code", {}, "chaosplane token"), " prints one). It is kept in this tab's ",
      "session storage only, and sent to the API in the Authorization header."),
    h("button", { class: "btn btn-primary mt-3", type: "submit" }, icon("box-arrow-in-right"), " Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim().replace(/^Bearer\s+/i, "");
    input.classList.remove("is-invalid");
    if (!value) {
      feedback.textContent = "Paste a token.";
      input.classList.add("is-invalid");
      return;
    }
    token.set(value);
    try {
      state.me = await api("GET", "/me");
    } catch (err) {
      token.clear();
      feedback.textContent = err instanceof ApiError && err.status === 401
        ? `The API refused this token: ${err.message}.` : String(err.message || err);
      input.classList.add("is-invalid");
      input.focus();
      return;
    }
    showChrome();
    location.hash = "#/experiments";
    route();
  });
  mount(main, form);
  input.focus();
  // Where the deployment has an OIDC issuer, it may say where people get a token.
  fetch("config.json", { cache: "no-store" }).then((r) => (r.ok ? r.json() : {})).then((config) => {
    if (!config.token_url || !/^https?:\/\//.test(config.token_url)) return;
    form.querySelector("#token-help").append(" ", h("a", { href: config.token_url, id: "get-token", target: "_blank", rel: "noopener noreferrer" }, "Get a token ", icon("box-arrow-up-right")));
  }).catch(() => {});
}

function showChrome() {
  document.getElementById("nav-links").hidden = !state.me;
  document.getElementById("whoami").hidden = !state.me;
  if (state.me) {
    document.getElementById("whoami-name").textContent = `${state.me.principal} · ${state.me.team}`;
    document.getElementById("whoami-role").textContent = state.me.role;
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  token.clear();
  state.me = null;
  showChrome();
  document.getElementById("lever-banner").hidden = true;
  location.hash = "#/signin";
  signInView();
});

// ---- emergency stop banner (every page) ----------------------------------------------------------

async function lever(action) {
  try {
    await api("POST", `/safety/${action}`, {});
    toast(action === "halt" ? "Emergency stop engaged." : "Emergency stop released.",
      action === "halt" ? "warning" : "success");
  } catch (err) {
    toast(err.message, "danger");
  }
  await refreshBanner();
  if (currentView() === "safety") route();
}

async function refreshBanner() {
  const banner = document.getElementById("lever-banner");
  if (!state.me) { banner.hidden = true; return null; }
  let safety;
  try {
    safety = await api("GET", "/safety");
  } catch {
    return null;  // the banner is advisory; the page's own request reports errors
  }
  banner.hidden = !safety.lever;
  if (safety.lever) {
    document.getElementById("lever-detail").textContent =
      `No experiment can start. Engaged by ${safety.lever.engaged_by} at ${when(safety.lever.engaged_at)}` +
      (safety.lever.team === "*" ? " for every team." : ".");
    mount(document.getElementById("lever-actions"), can("admin")
      ? h("button", { class: "btn btn-light btn-sm", type: "button", id: "banner-release", onclick: () => lever("release") },
        icon("unlock"), " Release")
      : null);
  }
  return safety;
}

// ---- views ---------------------------------------------------------------------------------------

async function experimentsView() {
  mount(main, loading());
  const [experiments, targets] = await Promise.all([all("/experiments"), all("/targets")]);
  const targetName = Object.fromEntries(targets.map((t) => [t.id, t.name]));
  const rows = experiments.map((e) => h("tr", { dataset: { experiment: e.name } },
    h("td", {}, h("a", { class: "fw-semibold", href: `#/experiments/${encodeURIComponent(e.id)}` }, e.name), e.description ? h("div", { class: "small text-secondary" }, e.description) : null),
    h("td", {}, h("code", {}, e.type)),
    h("td", {}, targetName[e.target] || h("span", { class: "mono" }, e.target)),
    h("td", {}, `${e.duration} s`),
    h("td", {}, statusBadge(e.status)),
  ));
  mount(main,
    h("div", { class: "d-flex align-items-center mb-3" },
      h("h1", { class: "h3 mb-0" }, "Experiments"),
      can("operator") ? h("div", { class: "ms-auto d-flex gap-2" },
        h("a", { class: "btn btn-outline-primary", href: "#/experiments/import", id: "import-fis" }, icon("box-arrow-in-down"), " Import FIS template"),
        h("a", { class: "btn btn-primary", href: "#/experiments/new", id: "new-experiment" }, icon("plus-lg"), " New experiment")) : null),
    experiments.length === 0
      ? h("p", { class: "text-secondary" }, "No experiments yet.")
      : h("div", { class: "table-responsive" }, h("table", { class: "table table-hover", id: "experiments" },
        h("thead", {}, h("tr", {}, ["Name", "Fault", "Target", "Duration", "Status"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))),
  );
}

async function safetyView() {
  mount(main, loading());
  const safety = await refreshBanner();
  if (!safety) throw new Error("could not read the safety state");
  mount(main,
    h("h1", { class: "h3 mb-3" }, "Safety"),
    h("div", { class: "card mb-3" }, h("div", { class: "card-body" },
      h("h2", { class: "h5" }, "Emergency stop"),
      safety.lever
        ? h("p", { id: "lever-state" }, "Engaged by ", h("strong", {}, safety.lever.engaged_by), ` at ${when(safety.lever.engaged_at)}.`)
        : h("p", { id: "lever-state" }, "Released: experiments may run."),
      can("admin")
        ? (safety.lever
          ? h("button", { class: "btn btn-success", type: "button", id: "release", onclick: () => lever("release") }, icon("unlock"), " Release")
          : h("button", { class: "btn btn-danger", type: "button", id: "halt", onclick: () => lever("halt") }, icon("sign-stop"), " Halt every run"))
        : h("p", { class: "text-secondary small mb-0" }, "Only admins may engage or release it."),
    )),
    h("div", { class: "card" }, h("div", { class: "card-body" },
      h("h2", { class: "h5" }, "Blast-radius policy"),
      h("pre", { class: "mb-0 mono" }, JSON.stringify(safety.policy, null, 2)),
    )),
  );
}

// Each page: its pattern (":id" matches one path segment), the least role that sees it, and its view.
const PAGES = [
  ["experiments", "viewer", () => experimentsView()],
  ["experiments/new", "operator", () => experimentFormView(null, { main })],
  ["experiments/import", "operator", () => fisImportView({ main })],
  ["experiments/:id", "viewer", (id) => experimentView(id, { can, main, route })],
  ["experiments/:id/edit", "operator", (id) => experimentFormView(id, { main })],
  ["results/:id", "viewer", (id) => resultView(id, { main })],
  ["targets", "viewer", () => targetsView({ can, main, route })],
  ["targets/new", "operator", () => targetFormView(null, { main })],
  ["targets/:id/edit", "operator", (id) => targetFormView(id, { main })],
  ["safety", "viewer", () => safetyView()],
  ["notifications", "viewer", () => notificationsView({ can, main, route })],
  ["audit", "admin", () => auditView({ main })],
];
const currentView = () => location.hash.replace(/^#\//, "") || "experiments";

/** The page the hash names, and its id; an unknown hash shows the experiments. */
function pageFor(path) {
  const parts = path.split("/");
  for (const [pattern, role, view] of PAGES) {
    const want = pattern.split("/");
    if (want.length !== parts.length) continue;
    if (want.every((w, i) => w === ":id" ? parts[i] !== "" : w === parts[i])) {
      const at = want.indexOf(":id");
      return { pattern, role, view, id: at < 0 ? null : decodeURIComponent(parts[at]) };
    }
  }
  return { ...pageFor("experiments"), pattern: "experiments" };
}

// Renders run one after another: a slow render of the previous page must never finish after, and
// mount over, the page the user has moved on to.
let rendering = Promise.resolve();
function route() {
  rendering = rendering.then(render, render);
  return rendering;
}

async function render() {
  if (!token.get()) { signInView(); return; }
  if (!state.me) {
    try {
      state.me = await api("GET", "/me");
    } catch (err) {
      token.clear();
      signInView(err instanceof ApiError && err.status === 401 ? "Your session ended; sign in again." : err.message);
      return;
    }
    showChrome();
  }
  let page;
  try {
    page = pageFor(currentView());
  } catch {
    page = pageFor("experiments");  // a hash that does not decode (#/experiments/%E0)
  }
  const section = page.pattern.split("/")[0];
  document.querySelectorAll("#nav-links .nav-link").forEach((a) => {
    a.parentElement.hidden = !can(a.dataset.role || "viewer");
    const active = a.dataset.view === section;
    a.classList.toggle("active", active);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  // On a phone the menu is open when a link is tapped: close it so the page shows.
  const nav = document.getElementById("nav");
  if (nav.classList.contains("show") && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(nav).hide();
  refreshBanner();
  stopPolling();
  const before = document.activeElement;
  try {
    if (!can(page.role)) throw new Error(`This page is for ${page.role}s; you are signed in as ${state.me.role}.`);
    await page.view(page.id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { token.clear(); state.me = null; showChrome(); signInView("Your session ended; sign in again."); return; }
    mount(main, errorAlert(err));
  }
  announce(before, rendered);
  rendered = true;
}
let rendered = false;  // the first page of a visit keeps the browser's own focus (the skip link first)

// After a page change, a screen reader hears the new page's title and the keyboard starts at its
// heading, unless the view itself put the focus somewhere (a form's first field).
function announce(before, focus) {
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent.trim()} · Chaosplane` : "Chaosplane";
  const moved = document.activeElement !== before && main.contains(document.activeElement);
  if (!focus || moved || !heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
// A form's handler that meets an expired token re-throws the 401: sign in again, saying why.
window.addEventListener("unhandledrejection", (event) => {
  if (!(event.reason instanceof ApiError && event.reason.status === 401)) return;
  event.preventDefault();
  token.clear();
  state.me = null;
  showChrome();
  signInView("Your session ended; sign in again.");
});
setInterval(() => { if (state.me) refreshBanner(); }, 10000);
route();
