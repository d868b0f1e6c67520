// Form fields with Bootstrap validation markup, and the API's 422 field errors put beside the
// field they name: the input whose name is the longest prefix of the error's path
// ("body.resource_ids.0" -> resource_ids, "body.webhook.inject.url" -> webhook.inject.url); the
// rest above the form.

import { h } from "./dom.js";

export function field(name, label, input, help) {
  input.id = input.id || `f-${name.replaceAll(".", "-")}`;
  input.name = name;
  const feedbackId = `${input.id}-feedback`;
  input.setAttribute("aria-describedby", help ? `${feedbackId} ${input.id}-help` : feedbackId);
  return h("div", { class: "mb-3", dataset: { field: name } },
    h("label", { class: "form-label", for: input.id }, label),
    input,
    h("div", { class: "invalid-feedback", id: feedbackId }),
    help ? h("div", { class: "form-text", id: `${input.id}-help` }, help) : null,
  );
}

export const textInput = (attrs = {}) => h("input", { class: "form-control", type: "text", autocomplete: "off", ...attrs });

export function select(options, attrs = {}) {
  return h("select", { class: "form-select", ...attrs }, options.map((o) => h("option", { value: o }, o)));
}

export function clearErrors(form) {
  form.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
  form.querySelectorAll(".invalid-feedback").forEach((el) => { el.textContent = ""; });
  const summary = form.querySelector(".form-errors");
  if (summary) summary.replaceChildren();
}

function inputFor(form, path) {
  const parts = path.split(".").filter(Boolean);
  for (let n = parts.length; n > 0; n -= 1) {
    const input = form.querySelector(`[name="${CSS.escape(parts.slice(0, n).join("."))}"]`);
    if (input) return input;
  }
  return null;
}

/** Show an ApiError's field errors beside their inputs; returns the first invalid input (to focus). */
export function showErrors(form, err) {
  clearErrors(form);
  const summary = form.querySelector(".form-errors");
  const loose = [];
  let first = null;
  const errors = err.errors && err.errors.length ? err.errors : [{ field: "", message: err.message }];
  for (const e of errors) {
    const input = inputFor(form, String(e.field || "").replace(/^body\.?/, ""));
    const message = String(e.message || "").replace(/^Value error, /, "");
    if (input && !input.closest("[hidden]")) {
      input.classList.add("is-invalid");
      const feedback = document.getElementById(`${input.id}-feedback`);
      feedback.textContent = feedback.textContent ? `${feedback.textContent} ${message}` : message;
    } else {
      loose.push(message);
    }
  }
  if (summary && loose.length) {
    summary.append(h("div", { class: "alert alert-danger", role: "alert" }, loose.map((m) => h("div", {}, m))));
  }
  first = form.querySelector(".is-invalid");  // the first in the page's order, not the API's
  (first || summary)?.focus?.();
  return first;
}
