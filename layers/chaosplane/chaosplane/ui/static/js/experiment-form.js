// Create or edit an experiment; the API's validation errors appear beside the field they name.

import { api, all, ApiError } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { clearErrors, field, select, showErrors, textInput } from "./forms.js";

const FAULTS = [
  "ec2-stop", "ec2-reboot", "ec2-terminate", "pod-delete", "pod-network-latency", "pod-network-loss",
  "pod-cpu-stress", "pod-memory-stress", "rds-reboot", "rds-failover", "ecs-stop-task", "lambda-throttle",
  "ssm-cpu-stress", "ssm-memory-stress", "network-blackhole", "http-webhook",
];

export async function experimentFormView(id, { main }) {
  const [targets, existing] = await Promise.all([
    all("/targets"),
    id ? api("GET", `/experiments/${encodeURIComponent(id)}`) : Promise.resolve(null),
  ]);
  const name = textInput({ required: true, maxlength: 128 });
  const description = textInput({ maxlength: 1024 });
  const type = select(FAULTS);
  const target = h("select", { class: "form-select" },
    h("option", { value: "" }, "Choose a target…"),
    targets.map((t) => h("option", { value: t.id }, `${t.name} (${t.type})`)));
  const duration = textInput({ type: "number", min: 1, max: 43200, inputmode: "numeric" });
  const selection = textInput({ placeholder: "ALL, COUNT(n) or PERCENT(n)" });
  const parameters = h("textarea", { class: "form-control mono", rows: 3, spellcheck: "false" });
  const stopConditions = h("textarea", { class: "form-control mono", rows: 2, spellcheck: "false" });
  const irreversible = h("input", { class: "form-check-input", type: "checkbox", id: "f-allow_irreversible", name: "allow_irreversible" });

  const e = existing || { name: "", description: "", type: "ec2-stop", target: "", duration: 60, selection: "ALL", parameters: {}, stop_conditions: [], allow_irreversible: false };
  name.value = e.name;
  description.value = e.description;
  type.value = e.type;
  target.value = e.target;
  duration.value = String(e.duration);
  selection.value = e.selection;
  parameters.value = JSON.stringify(e.parameters, null, 2);
  stopConditions.value = e.stop_conditions.join("\n");
  irreversible.checked = e.allow_irreversible;

  const form = h("form", { id: "experiment-form", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field("name", "Name", name),
    field("description", "Description", description),
    h("div", { class: "row" },
      h("div", { class: "col-md-6" }, field("type", "Fault", type)),
      h("div", { class: "col-md-6" }, field("target", "Target", target))),
    h("div", { class: "row" },
      h("div", { class: "col-md-6" }, field("duration", "Duration (seconds)", duration)),
      h("div", { class: "col-md-6" }, field("selection", "Selection", selection, "ALL, COUNT(n) or PERCENT(n) of the target's resources."))),
    field("parameters", "Parameters (JSON)", parameters, "The fault's parameters, e.g. {\"force\": false}."),
    field("stop_conditions", "Stop conditions", stopConditions, "CloudWatch alarm names or ARNs, one a line."),
    h("div", { class: "form-check mb-3", dataset: { field: "allow_irreversible" } },
      irreversible,
      h("label", { class: "form-check-label", for: "f-allow_irreversible" }, "Allow a fault that cannot be rolled back (ec2-terminate)"),
      h("div", { class: "invalid-feedback", id: "f-allow_irreversible-feedback" })),
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary", type: "submit" }, existing ? "Save experiment" : "Create experiment"),
      h("a", { class: "btn btn-outline-secondary", href: existing ? `#/experiments/${encodeURIComponent(existing.id)}` : "#/experiments" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    let params;
    try {
      params = parameters.value.trim() ? JSON.parse(parameters.value) : {};
    } catch {
      showErrors(form, { errors: [{ field: "body.parameters", message: "not valid JSON" }] });
      return;
    }
    const body = {
      name: name.value,
      description: description.value,
      type: type.value,
      target: target.value,
      duration: duration.value === "" ? null : Number(duration.value),
      selection: selection.value.trim() || "ALL",
      parameters: params,
      stop_conditions: stopConditions.value.split(/[\s,]+/).filter(Boolean),
      allow_irreversible: irreversible.checked,
    };
    try {
      const saved = existing
        ? await api("PUT", `/experiments/${encodeURIComponent(existing.id)}`, body)
        : await api("POST", "/experiments", body);
      toast(`${existing ? "Saved" : "Created"} experiment ${saved.name}.`);
      location.hash = `#/experiments/${encodeURIComponent(saved.id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(form, err);
    }
  });
  mount(main, h("h1", { class: "h3 mb-3" }, existing ? `Edit ${existing.name}` : "New experiment"), form);
  name.focus();
}
