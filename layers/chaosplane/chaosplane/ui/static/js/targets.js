// Targets: the list, and one form to create or edit a target of any type. An http-endpoint target's
// webhook headers and signing secret are write-only: the API never returns them, so editing shows
// which header names are stored and leaves them as they are unless the user types new ones.

import { resilienceLine } from "./resilience.js";
import { api, all, ApiError } from "./api.js";
import { h, icon, mount, toast } from "./dom.js";
import { clearErrors, field, select, showErrors, textInput } from "./forms.js";

// Which optional fields each target type uses (the API checks the rest and says which field is wrong).
const TARGET_TYPES = {
  "ec2-instances": ["selector", "resource_ids"],
  "eks-pods": ["cluster", "namespace", "selector", "resource_ids"],
  "rds-instances": ["selector", "resource_ids"],
  "rds-clusters": ["selector", "resource_ids"],
  "ecs-tasks": ["cluster", "service", "selector", "resource_ids"],
  "lambda-functions": ["selector", "resource_ids"],
  "subnets": ["selector", "resource_ids"],
  "http-endpoint": ["webhook"],
};
const METHODS = ["POST", "PUT", "PATCH", "DELETE"];

const selects = (t) =>
  t.selector || (t.resource_ids || []).join(", ") || t.service || (t.webhook && t.webhook.inject.url) || "";

export async function targetsView({ can, main, route }) {
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
    h("td", { class: "fw-semibold" }, t.name, t.description ? h("div", { class: "small text-secondary fw-normal" }, t.description) : null),
    h("td", {}, h("code", {}, t.type)),
    h("td", { class: "mono" }, selects(t)),
    h("td", { class: "text-end text-nowrap" },
      can("operator")
        ? h("a", { class: "btn btn-outline-secondary btn-sm me-1", href: `#/targets/${encodeURIComponent(t.id)}/edit`, "aria-label": `Edit ${t.name}` }, icon("pencil"))
        : null,
      can("admin")
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
        h("thead", {}, h("tr", {}, ["Name", "Type", "Selects", h("span", { class: "visually-hidden" }, "Actions")].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))),
  );
}

/** "Name: value" a line -> {Name: value}; a line without a colon is an error the form shows. */
function parseHeaders(text) {
  const headers = {};
  for (const [index, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon < 1) throw new Error(`line ${index + 1} is not "Name: value"`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function webhookFields(existing) {
  const hook = (existing && existing.webhook) || { inject: { url: "", method: "POST" }, rollback: { url: "", method: "POST" }, timeout_seconds: 5, retries: 2, header_names: [] };
  const inputs = {
    "webhook.inject.url": textInput({ type: "url", inputmode: "url", placeholder: "https://service.example.com/chaos/inject", value: hook.inject.url }),
    "webhook.inject.method": select(METHODS),
    "webhook.rollback.url": textInput({ type: "url", inputmode: "url", placeholder: "https://service.example.com/chaos/rollback", value: hook.rollback.url }),
    "webhook.rollback.method": select(METHODS),
    "webhook.timeout_seconds": textInput({ type: "number", min: 0.1, max: 30, step: 0.1, value: hook.timeout_seconds }),
    "webhook.retries": textInput({ type: "number", min: 0, max: 5, step: 1, value: hook.retries }),
    "webhook.headers": h("textarea", { class: "form-control mono", rows: 2, spellcheck: "false", placeholder: "Authorization: Bearer …" }),
    "webhook.signing_secret": textInput({ type: "password", autocomplete: "new-password", minlength: 32, spellcheck: "false" }),
  };
  // The endpoint checks each call's signature with this secret, so its owner must have it too:
  // a generated one is shown (once) to copy into the endpoint's configuration.
  const generate = h("button", { class: "btn btn-outline-secondary btn-sm mt-1", type: "button", id: "generate-secret", onclick: () => {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    inputs["webhook.signing_secret"].type = "text";
    inputs["webhook.signing_secret"].value = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    inputs["webhook.signing_secret"].select();
  } }, icon("key"), " Generate");
  inputs["webhook.inject.method"].value = hook.inject.method;
  inputs["webhook.rollback.method"].value = hook.rollback.method;
  const stored = existing && existing.webhook;
  const storedHeaders = stored && stored.header_names.length ? `Stored: ${stored.header_names.join(", ")}. Leave empty to keep them.` : "";
  const box = h("fieldset", { class: "border rounded p-3 mb-3", dataset: { field: "webhook" } },
    h("legend", { class: "h6 float-none w-auto px-1 mb-0" }, "Webhook"),
    h("p", { class: "small text-secondary" }, "Chaosplane calls the inject URL when the fault starts and the rollback URL when it ends, with a JSON body signed with HMAC-SHA256."),
    h("div", { class: "row" },
      h("div", { class: "col-md-9" }, field("webhook.inject.url", "Inject URL", inputs["webhook.inject.url"])),
      h("div", { class: "col-md-3" }, field("webhook.inject.method", "Inject method", inputs["webhook.inject.method"]))),
    h("div", { class: "row" },
      h("div", { class: "col-md-9" }, field("webhook.rollback.url", "Rollback URL", inputs["webhook.rollback.url"])),
      h("div", { class: "col-md-3" }, field("webhook.rollback.method", "Rollback method", inputs["webhook.rollback.method"]))),
    h("div", { class: "row" },
      h("div", { class: "col-md-6" }, field("webhook.timeout_seconds", "Timeout (seconds, per attempt)", inputs["webhook.timeout_seconds"])),
      h("div", { class: "col-md-6" }, field("webhook.retries", "Retries", inputs["webhook.retries"], "Extra attempts after a timeout or a 5xx."))),
    field("webhook.headers", "Headers", inputs["webhook.headers"], `"Name: value", one a line. Kept in Secrets Manager, never shown again. ${storedHeaders}`.trim()),
    field("webhook.signing_secret", "Signing secret", inputs["webhook.signing_secret"],
      `At least 32 characters; the endpoint verifies the X-Chaosplane-Signature of each call with it. Kept in Secrets Manager, never shown again.${stored ? " Leave empty to keep the stored one." : ""}`),
    generate,
  );
  const body = () => {
    const webhook = {
      inject: { url: inputs["webhook.inject.url"].value.trim(), method: inputs["webhook.inject.method"].value },
      rollback: { url: inputs["webhook.rollback.url"].value.trim(), method: inputs["webhook.rollback.method"].value },
      timeout_seconds: Number(inputs["webhook.timeout_seconds"].value),
      retries: Number(inputs["webhook.retries"].value),
    };
    if (inputs["webhook.headers"].value.trim()) webhook.headers = parseHeaders(inputs["webhook.headers"].value);
    if (inputs["webhook.signing_secret"].value) webhook.signing_secret = inputs["webhook.signing_secret"].value;
    return webhook;
  };
  return { box, body };
}

export async function targetFormView(id, { main }) {
  const existing = id ? await api("GET", `/targets/${encodeURIComponent(id)}`) : null;
  const t = existing || {};
  const type = select(Object.keys(TARGET_TYPES), { disabled: Boolean(existing) });
  type.value = t.type || "ec2-instances";
  const inputs = {
    cluster: textInput({ value: t.cluster || "" }),
    namespace: textInput({ value: t.namespace || "" }),
    service: textInput({ value: t.service || "" }),
    selector: textInput({ placeholder: "app=web,tier in (front,back)", value: t.selector || "" }),
    resource_ids: h("textarea", { class: "form-control mono", rows: 3 }),
  };
  inputs.resource_ids.value = (t.resource_ids || []).join("\n");
  const webhook = webhookFields(existing);
  const optional = {
    cluster: field("cluster", "Cluster", inputs.cluster),
    namespace: field("namespace", "Namespace", inputs.namespace),
    service: field("service", "ECS service", inputs.service),
    selector: field("selector", "Label selector", inputs.selector, "Tags (AWS) or labels (Kubernetes) the resources carry."),
    resource_ids: field("resource_ids", "Resource ids", inputs.resource_ids, "One a line (or comma-separated)."),
    webhook: webhook.box,
  };
  const showFor = () => {
    for (const [key, wrapper] of Object.entries(optional)) wrapper.hidden = !TARGET_TYPES[type.value].includes(key);
  };
  type.addEventListener("change", showFor);
  const name = textInput({ required: true, maxlength: 128, value: t.name || "" });
  const description = textInput({ maxlength: 1024, value: t.description || "" });
  const form = h("form", { id: "target-form", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field("name", "Name", name),
    field("description", "Description", description),
    field("type", "Type", type, existing ? "A target's type cannot change; create a new target instead." : null),
    Object.values(optional),
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary", type: "submit" }, existing ? "Save target" : "Create target"),
      h("a", { class: "btn btn-outline-secondary", href: "#/targets" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { name: name.value, description: description.value, type: type.value };
    for (const key of TARGET_TYPES[type.value]) {
      if (key === "webhook") {
        try {
          body.webhook = webhook.body();
        } catch (err) {
          showErrors(form, { errors: [{ field: "body.webhook.headers", message: err.message }] });
          return;
        }
        continue;
      }
      const value = inputs[key].value.trim();
      if (!value) continue;
      body[key] = key === "resource_ids" ? value.split(/[\s,]+/).filter(Boolean) : value;
    }
    try {
      const saved = existing
        ? await api("PUT", `/targets/${encodeURIComponent(existing.id)}`, body)
        : await api("POST", "/targets", body);
      toast(`${existing ? "Saved" : "Created"} target ${saved.name}.`);
      location.hash = "#/targets";
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(form, err);
    }
  });
  showFor();
  mount(main, h("h1", { class: "h3 mb-3" }, existing ? `Edit ${existing.name}` : "New target"),
    existing ? resilienceLine("targets", existing.id) : null, form);
  name.focus();
}
