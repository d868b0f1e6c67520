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

  if (existing && existing.actions) { stepsFormView(existing, main); return; }
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

const STEP_FIELDS = ["name", "description", "targets", "actions", "duration", "stop_conditions", "allow_irreversible"];

/** A multi-step experiment is edited as the JSON the API takes: the single-fault form cannot say it. */
function stepsFormView(existing, main) {
  const body = Object.fromEntries(STEP_FIELDS.map((k) => [k, existing[k]]));
  const text = h("textarea", { class: "form-control mono", rows: 24, spellcheck: "false" });
  text.value = JSON.stringify(body, null, 2);
  const problems = h("div", { id: "steps-problems", tabindex: "-1" });
  const form = h("form", { id: "steps-form", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field("steps", "The experiment (JSON: targets, actions, duration, stop conditions)", text,
      "An action starts once those in its start_after have completed; docs/multi-step.md has the rules."),
    problems,
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary", type: "submit" }, "Save experiment"),
      h("a", { class: "btn btn-outline-secondary", href: `#/experiments/${encodeURIComponent(existing.id)}` }, "Cancel")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    problems.replaceChildren();
    let edited;
    try {
      edited = JSON.parse(text.value);
    } catch (err) {
      showErrors(form, { errors: [{ field: "body.steps", message: `not valid JSON: ${err.message}` }] });
      return;
    }
    try {
      const saved = await api("PUT", `/experiments/${encodeURIComponent(existing.id)}`, edited);
      toast(`Saved experiment ${saved.name}.`);
      location.hash = `#/experiments/${encodeURIComponent(saved.id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      const errors = err.errors && err.errors.length ? err.errors : [{ field: "", message: err.message }];
      mount(problems, h("div", { class: "alert alert-danger", role: "alert" }, h("ul", { class: "mb-0" },
        errors.map((e) => h("li", {}, h("span", { class: "mono" }, String(e.field || "body").replace(/^body\.?/, "") || "body"), `: ${e.message}`)))));
      problems.focus();
    }
  });
  mount(main, h("h1", { class: "h3 mb-3" }, `Edit ${existing.name}`), form);
  text.focus();
}
