// An experiment's schedules (EventBridge Scheduler): list with the next fire times, add one, pause,
// resume, delete. The API checks expressions and time zones as the Scheduler would and says why one
// is wrong; that message appears beside the field.

import { api, ApiError } from "./api.js";
import { h, icon, mount, toast, when } from "./dom.js";
import { clearErrors, field, showErrors, textInput } from "./forms.js";

const base = (experimentId) => `/experiments/${encodeURIComponent(experimentId)}/schedules`;

function scheduleRow(experimentId, s, can, refresh) {
  const act = (label, action) => async () => {
    try {
      if (action === "delete") {
        if (!confirm(`Delete the schedule ${s.expression}?`)) return;
        await api("DELETE", `${base(experimentId)}/${encodeURIComponent(s.id)}`);
      } else {
        await api("POST", `${base(experimentId)}/${encodeURIComponent(s.id)}/${action}`, {});
      }
      toast(`Schedule ${label}.`);
    } catch (err) {
      toast(err.message, "danger");
    }
    await refresh();
  };
  const next = s.enabled && s.next_runs.length ? s.next_runs.slice(0, 3).map(when).join(" · ") : "—";
  return h("tr", { dataset: { schedule: s.id } },
    h("td", { class: "mono" }, s.expression, s.description ? h("div", { class: "small text-secondary" }, s.description) : null),
    h("td", {}, s.timezone),
    h("td", {}, s.enabled
      ? h("span", { class: "badge text-bg-success", dataset: { state: "enabled" } }, "enabled")
      : h("span", { class: "badge text-bg-secondary", dataset: { state: "paused" } }, "paused")),
    h("td", { class: "small" }, next),
    h("td", { class: "text-end text-nowrap" }, can("operator") ? [
      s.enabled
        ? h("button", { class: "btn btn-outline-secondary btn-sm me-1", type: "button", onclick: act("paused", "pause"), "aria-label": `Pause ${s.expression}` }, icon("pause-fill"))
        : h("button", { class: "btn btn-outline-success btn-sm me-1", type: "button", onclick: act("resumed", "resume"), "aria-label": `Resume ${s.expression}` }, icon("play-fill")),
      h("button", { class: "btn btn-outline-danger btn-sm", type: "button", onclick: act("deleted", "delete"), "aria-label": `Delete ${s.expression}` }, icon("trash")),
    ] : null),
  );
}

function addForm(experimentId, refresh) {
  const expression = textInput({ placeholder: "cron(0 10 ? * MON-FRI *) or rate(1 day)", spellcheck: "false" });
  const timezone = textInput({ value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC", spellcheck: "false" });
  const description = textInput({ maxlength: 1024 });
  const form = h("form", { id: "schedule-form", novalidate: true, class: "mt-3" },
    h("div", { class: "form-errors", tabindex: "-1" }),
    h("div", { class: "row" },
      h("div", { class: "col-md-5" }, field("expression", "Expression", expression, "cron(…), rate(…) or at(yyyy-mm-ddThh:mm:ss).")),
      h("div", { class: "col-md-3" }, field("timezone", "Time zone", timezone)),
      h("div", { class: "col-md-4" }, field("description", "Description", description))),
    h("button", { class: "btn btn-outline-primary", type: "submit" }, icon("calendar-plus"), " Add schedule"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const body = { expression: expression.value.trim(), timezone: timezone.value.trim() || "UTC", description: description.value };
      await api("POST", base(experimentId), body);
      toast("Schedule added.");
      await refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      showErrors(form, err);
    }
  });
  return form;
}

/** The schedules card of an experiment's page; refreshes itself after every change. */
export function schedulesCard(experimentId, can) {
  const slot = h("div", { id: "schedules" });
  const refresh = async () => {
    const schedules = await api("GET", base(experimentId));
    mount(slot, h("div", { class: "card mb-3" }, h("div", { class: "card-body" },
      h("h2", { class: "h5" }, "Schedules"),
      schedules.length
        ? h("div", { class: "table-responsive" }, h("table", { class: "table table-sm mb-0", id: "schedule-table" },
          h("thead", {}, h("tr", {}, ["Expression", "Time zone", "State", "Next runs", h("span", { class: "visually-hidden" }, "Actions")].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, schedules.map((s) => scheduleRow(experimentId, s, can, refresh)))))
        : h("p", { class: "text-secondary small mb-0" }, "Runs only on demand."),
      can("operator") ? addForm(experimentId, refresh) : null,
    )));
  };
  refresh().catch((err) => mount(slot, h("div", { class: "alert alert-danger" }, err.message)));
  return slot;
}
