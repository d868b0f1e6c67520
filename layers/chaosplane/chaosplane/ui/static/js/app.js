// The dashboard: a hash router over a few views. Each view fetches what it shows and renders it with
// dom.js; buttons exist only when the signed-in role may use them (the API enforces it regardless).

import { api, all, ApiError, token } from "./api.js";
import { h, icon, mount, statusBadge, toast, when } from "./dom.js";
import { clearErrors, field, select, showErrors, textInput } from "./forms.js";
import { experimentView, resultView, stopPolling } from "./experiment.js";
import { experimentFormView } from "./experiment-form.js";

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
      can("operator") ? h("a", { class: "btn btn-primary ms-auto", href: "#/experiments/new", id: "new-experiment" }, icon("plus-lg"), " New experiment") : null),
    experiments.length === 0
      ? h("p", { class: "text-secondary" }, "No experiments yet.")
      : h("div", { class: "table-responsive" }, h("table", { class: "table table-hover", id: "experiments" },
        h("thead", {}, h("tr", {}, ["Name", "Fault", "Target", "Duration", "Status"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))),
  );
}

async function targetsView() {
  mount(main, loading());
  const targets = await all("/targets");
  const remove = async (target) => {
    if (!confirm(`Delete target ${target.name}?`)) return;
    try {
      await api("DELETE", `/targets/${encodeURIComponent(target.id)}`);
      toast(`Deleted ${target.name}.`);
    } catch (err) {
      toast(err.message, "danger");
    }
    route();
  };
  const rows = targets.map((t) => h("tr", { dataset: { target: t.name } },
    h("td", { class: "fw-semibold" }, t.name),
    h("td", {}, h("code", {}, t.type)),
    h("td", { class: "mono" }, t.selector || (t.resource_ids || []).join(", ") || t.service || (t.webhook && t.webhook.url) || ""),
    h("td", {}, can("admin")
      ? h("button", { class: "btn btn-outline-danger btn-sm", type: "button", "aria-label": `Delete ${t.name}`, onclick: () => remove(t) }, icon("trash"))
      : null),
  ));
  mount(main,
    h("div", { class: "d-flex align-items-center mb-3" },
      h("h1", { class: "h3 mb-0" }, "Targets"),
      can("operator") ? h("a", { class: "btn btn-primary ms-auto", href: "#/targets/new", id: "new-target" }, icon("plus-lg"), " New target") : null),
    targets.length === 0
      ? h("p", { class: "text-secondary" }, "No targets yet.")
      : h("div", { class: "table-responsive" }, h("table", { class: "table table-hover", id: "targets" },
        h("thead", {}, h("tr", {}, ["Name", "Type", "Selects", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))),
  );
}

// Which optional fields each target type uses (the API checks the rest and says which field is wrong).
const TARGET_TYPES = {
  "ec2-instances": ["selector", "resource_ids"],
  "eks-pods": ["cluster", "namespace", "selector", "resource_ids"],
  "rds-instances": ["selector", "resource_ids"],
  "rds-clusters": ["selector", "resource_ids"],
  "ecs-tasks": ["cluster", "service", "selector", "resource_ids"],
  "lambda-functions": ["selector", "resource_ids"],
  "subnets": ["selector", "resource_ids"],
};

async function targetFormView() {
  const type = select(Object.keys(TARGET_TYPES));
  const inputs = {
    cluster: textInput(),
    namespace: textInput(),
    service: textInput(),
    selector: textInput({ placeholder: "app=web,tier in (front,back)" }),
    resource_ids: h("textarea", { class: "form-control mono", rows: 3 }),
  };
  const optional = {
    cluster: field("cluster", "Cluster", inputs.cluster),
    namespace: field("namespace", "Namespace", inputs.namespace),
    service: field("service", "ECS service", inputs.service),
    selector: field("selector", "Label selector", inputs.selector, "Tags (AWS) or labels (Kubernetes) the resources carry."),
    resource_ids: field("resource_ids", "Resource ids", inputs.resource_ids, "One a line (or comma-separated)."),
  };
  const showFor = () => {
    for (const [name, wrapper] of Object.entries(optional)) wrapper.hidden = !TARGET_TYPES[type.value].includes(name);
  };
  type.addEventListener("change", showFor);
  const name = textInput({ required: true, maxlength: 128 });
  const description = textInput({ maxlength: 1024 });
  const form = h("form", { id: "target-form", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field("name", "Name", name),
    field("description", "Description", description),
    field("type", "Type", type, "http-endpoint targets (webhooks) are created with the API or CLI for now."),
    Object.values(optional),
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary", type: "submit" }, "Create target"),
      h("a", { class: "btn btn-outline-secondary", href: "#/targets" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { name: name.value, description: description.value, type: type.value };
    for (const key of TARGET_TYPES[type.value]) {
      const value = inputs[key].value.trim();
      if (!value) continue;
      body[key] = key === "resource_ids" ? value.split(/[\s,]+/).filter(Boolean) : value;
    }
    try {
      const created = await api("POST", "/targets", body);
      toast(`Created target ${created.name}.`);
      location.hash = "#/targets";
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(form, err);
    }
  });
  showFor();
  mount(main, h("h1", { class: "h3 mb-3" }, "New target"), form);
  name.focus();
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

const VIEWS = {
  experiments: experimentsView,
  targets: targetsView,
  "targets/new": targetFormView,
  "experiments/new": () => experimentFormView(null, { main }),
  safety: safetyView,
};
const currentView = () => location.hash.replace(/^#\//, "") || "experiments";
const DETAIL = { experiments: experimentView, results: resultView };
const viewName = () => {
  const path = currentView();
  if (VIEWS[path]) return path;
  const [top, id, action] = path.split("/");
  if (top === "experiments" && id && action === "edit") return "experiments/:id/edit";
  if (DETAIL[top] && id) return `${top}/:id`;
  return VIEWS[top] ? top : "experiments";
};

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
  const name = viewName();
  document.querySelectorAll("#nav-links .nav-link").forEach((a) => {
    const active = a.dataset.view === name.split("/")[0];
    a.classList.toggle("active", active);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  // On a phone the menu is open when a link is tapped: close it so the page shows.
  const nav = document.getElementById("nav");
  if (nav.classList.contains("show") && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(nav).hide();
  refreshBanner();
  stopPolling();
  try {
    if (name === "experiments/:id/edit") {
      await experimentFormView(decodeURIComponent(currentView().split("/")[1]), { main });
    } else if (name.endsWith("/:id")) {
      const [top, id] = currentView().split("/");
      await DETAIL[top](decodeURIComponent(id), { can, main });
    } else {
      await VIEWS[name]();
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { token.clear(); state.me = null; showChrome(); signInView("Your session ended; sign in again."); return; }
    mount(main, errorAlert(err));
  }
}

window.addEventListener("hashchange", route);
setInterval(() => { if (state.me) refreshBanner(); }, 10000);
route();
