// Import an AWS FIS experiment template: paste it, and the API creates its targets and the
// experiment together, or answers each problem (shown as a list, nothing created).

import { api, ApiError } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { clearErrors, field, showErrors, textInput } from "./forms.js";

export async function fisImportView({ main }) {
  const template = h("textarea", { class: "form-control mono", rows: 16, spellcheck: "false",
    placeholder: '{"targets": {...}, "actions": {...}, "stopConditions": [...]}' });
  const duration = textInput({ type: "number", min: 1, max: 43200, inputmode: "numeric" });
  const irreversible = h("input", { class: "form-check-input", type: "checkbox", id: "f-allow_irreversible" });
  const problems = h("div", { id: "import-problems", tabindex: "-1" });
  const form = h("form", { id: "fis-import", novalidate: true },
    h("div", { class: "form-errors", tabindex: "-1" }),
    field("template", "FIS experiment template (JSON)", template,
      "What aws fis get-experiment-template answers, or a CreateExperimentTemplate input."),
    field("duration", "Duration (seconds, optional)", duration, "By default, the longest chain of actions plus a minute (at least five)."),
    h("div", { class: "form-check mb-3" }, irreversible,
      h("label", { class: "form-check-label", for: "f-allow_irreversible" }, "Allow actions that cannot be rolled back (terminate instances, delete pods)")),
    problems,
    h("div", { class: "d-flex gap-2" },
      h("button", { class: "btn btn-primary", type: "submit" }, "Import"),
      h("a", { class: "btn btn-outline-secondary", href: "#/experiments" }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    problems.replaceChildren();
    let body;
    try {
      body = JSON.parse(template.value);
    } catch (err) {
      showErrors(form, { errors: [{ field: "body.template", message: `not valid JSON: ${err.message}` }] });
      return;
    }
    const query = new URLSearchParams({ allow_irreversible: String(irreversible.checked) });
    if (duration.value !== "") query.set("duration", duration.value);
    try {
      const imported = await api("POST", `/experiments/import?${query}`, body);
      toast(`Imported ${imported.experiment.name} and ${Object.keys(imported.targets).length} target(s).`);
      location.hash = `#/experiments/${encodeURIComponent(imported.experiment.id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      if (err instanceof ApiError && err.errors.length) {
        mount(problems, h("div", { class: "alert alert-danger", role: "alert" },
          h("p", { class: "mb-1" }, `${err.message}:`),
          h("ul", { class: "mb-0" }, err.errors.map((e) => h("li", {}, e.message)))));
        problems.focus();
      } else {
        showErrors(form, err);
      }
    }
  });
  mount(main, h("h1", { class: "h3 mb-3" }, "Import an FIS template"), form);
  template.focus();
}
