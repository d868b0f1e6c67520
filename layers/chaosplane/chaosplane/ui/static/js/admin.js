// The team's admin pages: the audit trail (every mutating or denied request) and where run
// notifications go (Slack, PagerDuty, email). Secrets are write-only: the API shows masked hints.

import { api, ApiError } from "./api.js";
import { h, icon, mount, toast, when } from "./dom.js";
import { clearErrors, field, showErrors, textInput } from "./forms.js";

const OUTCOME_CLASSES = { allowed: "text-bg-success", denied: "text-bg-danger", rejected: "text-bg-warning", failed: "text-bg-danger" };

export async function auditView({ main }) {
  const rows = [];
  let next = null;
  const table = h("tbody");
  const more = h("button", { class: "btn btn-outline-secondary", type: "button", id: "audit-more" }, "Older entries");
  const load = async () => {
    const page = await api("GET", next ? `/audit?next_token=${encodeURIComponent(next)}` : "/audit");
    next = page.next_token;
    rows.push(...page.items);
    mount(table, rows.map((e) => h("tr", {},
      h("td", { class: "text-nowrap small" }, when(e.at)),
      h("td", {}, e.principal, " ", h("span", { class: "badge text-bg-secondary" }, e.role)),
      h("td", { class: "mono" }, `${e.method} ${e.path}`),
      h("td", {}, h("span", { class: `badge ${OUTCOME_CLASSES[e.outcome] || "text-bg-secondary"}` }, `${e.status} ${e.outcome}`)))));
    more.hidden = !next;
  };
  more.addEventListener("click", () => {
    more.disabled = true;  // one page at a time: a double click must not add a page twice
    load().catch((err) => toast(err.message, "danger")).finally(() => { more.disabled = false; });
  });
  await load();
  mount(main,
    h("h1", { class: "h3 mb-3" }, "Audit"),
    h("p", { class: "text-secondary small" }, "Every request that changed something, or was refused, newest first."),
    rows.length
      ? h("div", { class: "table-responsive" }, h("table", { class: "table table-sm", id: "audit" },
        h("thead", {}, h("tr", {}, ["When", "Who", "Request", "Outcome"].map((c) => h("th", { scope: "col" }, c)))),
        table))
      : h("p", { class: "text-secondary" }, "Nothing recorded yet."),
    more);
}

const NOTIFY_ON = ["completed", "stopped", "failed", "skipped", "stopping"];

// One channel: its current (masked) setting, a form to set it, and a button to remove it.
function channelCard({ id, title, current, input, label, help, path, body, isAdmin, refresh }) {
  const form = h("form", { id: `${id}-form`, novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field(Object.keys(body(""))[0], label, input, help),
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary btn-sm", type: "submit" }, current ? "Replace" : "Save"),
      current ? h("button", { class: "btn btn-outline-danger btn-sm", type: "button", id: `${id}-remove`, onclick: async () => {
        if (!confirm(`Stop notifying ${title}?`)) return;
        try { await api("DELETE", path); toast(`${title} removed.`); } catch (err) { toast(err.message, "danger"); }
        await refresh();
      } }, "Remove") : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await api("PUT", path, body(input.value));
      toast(`${title} saved.`);
      await refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(form, err);
    }
  });
  return h("div", { class: "card mb-3", id }, h("div", { class: "card-body" },
    h("h2", { class: "h5" }, title),
    h("p", { class: "mb-2", id: `${id}-current` }, current ? h("span", { class: "mono" }, current) : h("span", { class: "text-secondary" }, "Not set.")),
    isAdmin ? form : null));
}

export async function notificationsView({ can, main, route }) {
  const refresh = route;  // through the router: a save that ends after the user moved on mounts nothing
  const view = await api("GET", "/notifications");
  const isAdmin = can("admin");
  const boxes = NOTIFY_ON.map((status) => h("div", { class: "form-check form-check-inline" },
    h("input", { class: "form-check-input", type: "checkbox", id: `on-${status}`, value: status, checked: view.notify_on.includes(status), disabled: !isAdmin }),
    h("label", { class: "form-check-label", for: `on-${status}` }, status)));
  const notifyOn = h("form", { id: "notify-on-form", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    h("fieldset", { class: "mb-2" }, h("legend", { class: "form-label fs-6" }, "Notify Slack and email when a run is"), boxes),
    isAdmin ? h("button", { class: "btn btn-primary btn-sm", type: "submit" }, "Save") : null);
  notifyOn.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...notifyOn.querySelectorAll("input:checked")].map((i) => i.value);
    try {
      await api("PUT", "/notifications", { notify_on: chosen });
      toast("Saved.");
      await refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(notifyOn, err);
    }
  });
  mount(main,
    h("h1", { class: "h3 mb-3" }, "Notifications"),
    h("p", { class: "text-secondary small" }, "Where run state changes go. PagerDuty gets an incident when a run fails or is stopped by an alarm, resolved when its rollback completes."),
    h("div", { class: "card mb-3" }, h("div", { class: "card-body" }, notifyOn)),
    channelCard({
      id: "slack", title: "Slack", current: view.slack && view.slack.webhook_url, isAdmin, refresh,
      input: textInput({ type: "url", inputmode: "url", placeholder: "https://hooks.slack.com/services/…", autocomplete: "off" }),
      label: "Incoming webhook URL", help: "Kept in Secrets Manager; only a masked hint is ever shown.",
      path: "/notifications/slack", body: (value) => ({ webhook_url: value.trim() }),
    }),
    channelCard({
      id: "pagerduty", title: "PagerDuty", current: view.pagerduty && view.pagerduty.routing_key, isAdmin, refresh,
      input: textInput({ autocomplete: "off", spellcheck: "false" }),
      label: "Routing key", help: "The integration key of an Events API v2 integration (32 characters).",
      path: "/notifications/pagerduty", body: (value) => ({ routing_key: value.trim() }),
    }),
    channelCard({
      id: "email", title: "Email", current: view.email && view.email.addresses.join(", "), isAdmin, refresh,
      input: h("textarea", { class: "form-control", rows: 2, spellcheck: "false" }),
      label: "Addresses", help: "One a line; each gets an SNS confirmation mail first.",
      path: "/notifications/email", body: (value) => ({ addresses: value.split(/[\s,]+/).filter(Boolean) }),
    }),
    isAdmin ? null : h("p", { class: "text-secondary small" }, icon("lock"), " Only admins may change where notifications go."),
  );
}
