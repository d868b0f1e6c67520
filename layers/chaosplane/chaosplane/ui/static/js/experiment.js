// One experiment: its spec, the preview (the resolved plan), run with type-to-confirm, live status
// while it runs (timeline, resources hit, stop conditions, time left), stop, and its past runs.

import { api, all } from "./api.js";
import { h, icon, mount, statusBadge, toast, when } from "./dom.js";
import { metricCharts, probeCharts } from "./chart.js";
import { resilienceLine, verdictBadge } from "./resilience.js";
import { schedulesCard } from "./schedules.js";

const FINAL = new Set(["completed", "stopped", "failed", "skipped"]);
const POLL_MS = 1500;
const RESULT_POLL_MS = 5000;  // the result page re-reads the metrics too (GetMetricData): less often
let poller = null;
let visit = 0;  // one per page shown: work that finishes after the user has moved on is dropped

/** The router's call on every page change: stop this page's polling, and drop its late work. */
export function stopPolling() {
  visit += 1;
  clearPoll();
}

function clearPoll() {
  if (poller) clearTimeout(poller);
  poller = null;
}

/** Run `work` again in `ms`, unless the page has changed by then. */
function pollAgain(mine, work, ms) {
  if (mine !== visit) return;
  clearPoll();
  poller = setTimeout(() => { if (mine === visit) work().catch(() => {}); }, ms);
}

const newest = (results) =>
  [...results].sort((a, b) => String(b.start_time || b.id).localeCompare(String(a.start_time || a.id)))[0];

function resourceTable(rows, withReason) {
  if (!rows.length) return h("p", { class: "text-secondary small mb-0" }, "None.");
  return h("div", { class: "table-responsive" }, h("table", { class: "table table-sm mb-0" },
    h("thead", {}, h("tr", {}, ["Resource", "Kind", "State", withReason ? "Reason" : null].filter(Boolean).map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("td", { class: "mono" }, r.id), h("td", {}, r.kind), h("td", {}, r.state),
      withReason ? h("td", {}, r.reason, r.detail ? h("div", { class: "small text-secondary" }, r.detail) : null) : null)))));
}

function alarmBadge(state) {
  const kind = { OK: "success", ALARM: "danger", INSUFFICIENT_DATA: "warning", MISSING: "secondary" }[state] || "secondary";
  return h("span", { class: `badge text-bg-${kind}` }, state);
}

/** A multi-step preview: each step target's selected resources, and which actions hit them. */
function stepsPreview(plan) {
  const byStep = {};
  for (const r of plan.selected) (byStep[r.step] ||= []).push(r);
  const actionsOf = (step) => Object.entries(plan.steps).filter(([, s]) => s === step).map(([a]) => a);
  return h("div", { id: "preview-steps" }, Object.keys(byStep).sort().map((step) => h("section", { dataset: { step } },
    h("h3", { class: "h6 mt-3" }, `Target ${step}: ${byStep[step].length} selected, hit by `,
      actionsOf(step).map((a, i) => [i ? ", " : "", h("span", { class: "mono" }, a)])),
    resourceTable(byStep[step], false))));
}

/** What the target matched that is not the team's to act on: counted by why, never listed. */
function outsideNote(outside) {
  const reasons = Object.entries(outside);
  if (!reasons.length) return null;
  return h("p", { class: "text-secondary small mt-2 mb-0", id: "preview-outside" }, icon("shield-lock"), " Not listed: ",
    reasons.map(([why, count], i) => [i ? "; " : "", `${count} ${count === 1 ? "resource" : "resources"} ${why}`]),
    " (never selected).");
}

function previewCard(plan) {
  const steps = plan.steps && Object.keys(plan.steps).length;
  return h("div", { class: "card mb-3", id: "preview" }, h("div", { class: "card-body" },
    h("h2", { class: "h5" }, "Preview"),
    plan.verdict.allowed
      ? h("div", { class: "alert alert-success py-2" }, icon("check-circle"), " The safety policy allows this run.")
      : h("div", { class: "alert alert-danger py-2", id: "preview-refusals" }, icon("x-circle"), " Refused: ",
        plan.verdict.reasons.join("; ")),
    plan.irreversible ? h("div", { class: "alert alert-warning py-2" }, "This fault cannot be rolled back.") : null,
    steps ? [plannedChart(plan.schedule), stepsPreview(plan)] : [h("h3", { class: "h6 mt-3" }, `Selected (${plan.selected.length}) by ${plan.selection}`),
      resourceTable(plan.selected, false)],
    h("h3", { class: "h6 mt-3" }, `Eligible, not selected (${plan.eligible_not_selected.length})`),
    resourceTable(plan.eligible_not_selected, false),
    h("h3", { class: "h6 mt-3" }, `Excluded (${plan.excluded.length})`),
    resourceTable(plan.excluded, true),
    outsideNote(plan.outside || {}),
    h("h3", { class: "h6 mt-3" }, "Stop conditions"),
    plan.stop_conditions.length
      ? h("ul", { class: "list-unstyled mb-0" }, plan.stop_conditions.map((s) => h("li", {}, alarmBadge(s.state), " ", h("span", { class: "mono" }, s.alarm))))
      : h("p", { class: "text-secondary small mb-0" }, "None."),
  ));
}

const SVG = "http://www.w3.org/2000/svg";
const ACTION_STATUS = {
  pending: "secondary", in_force: "primary", completed: "success", stopped: "warning", interrupted: "warning",
  cancelled: "light",
};

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/** One action's row: its name, a badge, and its spans on the axis (percent of the run's length). */
function actionRow(name, badge, status, spans) {
  const bar = svg("svg", { class: "action-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img",
    "aria-label": `${name}: ${badge}` });
  for (const [cls, from, to] of spans) bar.append(svg("rect", { class: cls, x: from, y: 1, width: Math.max(0.3, to - from), height: 8 }));
  return h("li", { class: "action-row", dataset: { action: name, status } },
    h("span", { class: "mono action-name" }, name),
    h("span", { class: `badge text-bg-${ACTION_STATUS[status] || "secondary"}` }, badge),
    bar);
}

/** The run's actions on one time axis (Gantt-like): when each started, was in force, and ended. */
function actionsChart(result) {
  const names = Object.keys(result.actions || {});
  if (!names.length || !result.start_time) return null;
  const at = (iso) => (iso ? Date.parse(iso) : null);
  const start = at(result.start_time);
  const end = at(result.end_time) || Math.max(Date.now(), start + result.duration * 1000);
  const span = Math.max(1, end - start);
  const x = (t) => Math.min(100, Math.max(0, ((t - start) / span) * 100));
  const ordered = names.sort((a, b) => (at(result.actions[a].start_time) || end) - (at(result.actions[b].start_time) || end));
  const rows = ordered.map((name) => {
    const a = result.actions[name];
    const began = at(a.start_time);
    const inForce = at(a.in_force_at);
    const ended = at(a.end_time) || Math.min(Date.now(), end);  // held so far
    const spans = [];
    if (began !== null) spans.push(["injecting", x(began), x(inForce ?? ended)]);
    if (inForce !== null) spans.push([`held held-${a.status}`, x(inForce), x(ended)]);
    return actionRow(name, a.status.replace("_", " "), a.status, spans);
  });
  return [h("h3", { class: "h6" }, "Actions"),
    h("p", { class: "small text-secondary mb-1" }, "Light: injecting; dark: in force, until rolled back."),
    h("ol", { class: "list-unstyled mb-3", id: "actions" }, rows)];
}

/** The preview's timeline: when each action would start and end, were injections immediate. */
function plannedChart(schedule) {
  const names = Object.keys(schedule).sort((a, b) => schedule[a].start - schedule[b].start || schedule[a].end - schedule[b].end);
  const span = Math.max(1, ...names.map((n) => schedule[n].end));
  const x = (s) => (s / span) * 100;
  return [h("h3", { class: "h6 mt-3" }, "Planned timeline"),
    h("p", { class: "small text-secondary mb-1" }, `From the first action in force to ${span} s; injections and rollbacks add a little.`),
    h("ol", { class: "list-unstyled mb-3", id: "planned-actions" }, names.map((name) => {
      const w = schedule[name];
      return actionRow(name, w.start === w.end ? `at ${w.start} s` : `${w.start}–${w.end} s`, "pending",
        [["held", x(w.start), x(w.end)]]);
    }))];
}

function runCard(experiment, result, stopConditions) {
  const running = !FINAL.has(result.status);
  let timeLeft = null;
  if (result.status === "running" && result.start_time) {
    const left = Math.max(0, Math.round((Date.parse(result.start_time) + result.duration * 1000 - Date.now()) / 1000));
    timeLeft = h("span", { class: "ms-2 text-secondary", id: "time-left" }, `${left} s left`);
  }
  return h("div", { class: "card mb-3", id: "run", dataset: { status: result.status } }, h("div", { class: "card-body" },
    h("div", { class: "d-flex align-items-center flex-wrap gap-2 mb-2" },
      h("h2", { class: "h5 mb-0" }, experiment === null ? "Run" : running ? "Current run" : "Latest run"),
      h("span", { id: "run-status" }, statusBadge(result.status)),
      timeLeft,
      experiment === null ? null
        : h("a", { class: "ms-auto small", href: `#/results/${encodeURIComponent(result.id)}` }, "Result ", icon("arrow-right"))),
    result.error ? h("div", { class: "alert alert-danger py-2" }, result.error) : null,
    actionsChart(result),
    h("h3", { class: "h6 mt-2" }, "Resources hit"),
    result.resources.length
      ? h("div", { class: "table-responsive" }, h("table", { class: "table table-sm" },
        h("thead", {}, h("tr", {}, ["Resource", "Before", "After", "Restored"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, result.resources.map((r) => h("tr", {}, h("td", { class: "mono" }, r.id), h("td", {}, r.before), h("td", {}, r.after || ""), h("td", {}, r.restored || ""))))))
      : h("p", { class: "text-secondary small" }, "None yet."),
    stopConditions && stopConditions.length
      ? [h("h3", { class: "h6" }, "Stop conditions"),
        h("ul", { class: "list-unstyled" }, stopConditions.map((s) => h("li", {}, alarmBadge(s.state), " ", h("span", { class: "mono" }, s.alarm))))]
      : null,
    h("h3", { class: "h6" }, "Timeline"),
    h("ol", { class: "list-unstyled small mb-0", id: "timeline" }, result.timeline.map((e) =>
      h("li", {}, h("span", { class: "text-secondary" }, when(e.at)), " ", h("strong", {}, e.step), " ", e.message))),
  ));
}

/** Each action in the order it can start: its fault, target, how long it holds, what it waits for. */
function stepsSpec(experiment) {
  const actions = experiment.actions;
  const done = [];
  const names = Object.keys(actions);
  while (done.length < names.length) {  // start_after first, as the graph orders them
    const next = names.find((n) => !done.includes(n) && (actions[n].start_after || []).every((b) => done.includes(b)));
    if (next === undefined) break;
    done.push(next);
  }
  const held = (a) => (a.duration ? `${a.duration} s` : a.fault === "assert-alarm-state" ? "once" : "until the end");
  return [
    h("dl", { class: "row small" },
      h("dt", { class: "col-sm-3" }, "Duration"), h("dd", { class: "col-sm-9" }, `${experiment.duration} s at most`),
      h("dt", { class: "col-sm-3" }, "Stop conditions"), h("dd", { class: "col-sm-9 mono" }, experiment.stop_conditions.join(", ") || "none")),
    h("h2", { class: "h5" }, "Targets"),
    h("div", { class: "table-responsive" }, h("table", { class: "table table-sm", id: "step-targets" },
      h("thead", {}, h("tr", {}, ["Name", "Target", "Selection", "Filters"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, Object.entries(experiment.targets).map(([name, t]) => h("tr", {},
        h("td", { class: "mono" }, name), h("td", { class: "mono" }, t.target), h("td", {}, t.selection || "ALL"),
        h("td", { class: "small" }, (t.filters || []).map((f) => `${f.path} in ${f.values.join(", ")}`).join("; ") || "none")))))),
    h("h2", { class: "h5" }, "Actions"),
    h("ol", { class: "list-group list-group-numbered mb-3", id: "step-actions" }, done.map((name) => {
      const a = actions[name];
      return h("li", { class: "list-group-item", dataset: { action: name } },
        h("span", { class: "mono fw-semibold" }, name), " ", h("code", {}, a.fault),
        a.target ? [" on ", h("span", { class: "mono" }, a.target)] : null, ` · ${held(a)}`,
        (a.start_after || []).length ? h("div", { class: "small text-secondary" }, `after ${a.start_after.join(", ")}`) : null,
        a.parameters && Object.keys(a.parameters).length ? h("div", { class: "small mono" }, JSON.stringify(a.parameters)) : null);
    })),
  ];
}

function singleSpec(experiment) {
  return h("dl", { class: "row small" },
    h("dt", { class: "col-sm-3" }, "Fault"), h("dd", { class: "col-sm-9" }, h("code", {}, experiment.type)),
    h("dt", { class: "col-sm-3" }, "Selection"), h("dd", { class: "col-sm-9" }, experiment.selection),
    h("dt", { class: "col-sm-3" }, "Duration"), h("dd", { class: "col-sm-9" }, `${experiment.duration} s`),
    h("dt", { class: "col-sm-3" }, "Parameters"), h("dd", { class: "col-sm-9 mono" }, JSON.stringify(experiment.parameters)),
    h("dt", { class: "col-sm-3" }, "Stop conditions"), h("dd", { class: "col-sm-9 mono" }, experiment.stop_conditions.join(", ") || "none"));
}

export async function experimentView(id, { can, main }) {
  const mine = visit;
  const experiment = await api("GET", `/experiments/${encodeURIComponent(id)}`);
  const results = await all(`/experiments/${encodeURIComponent(id)}/results`);
  const previewSlot = h("div");
  const runSlot = h("div");
  const confirmSlot = h("div");
  let latest = newest(results);

  const refreshRun = async () => {
    if (!latest) { runSlot.replaceChildren(); return; }
    latest = await api("GET", `/results/${encodeURIComponent(latest.id)}`);
    let conditions = null;
    if (!FINAL.has(latest.status) && latest.stop_conditions.length) {
      conditions = await api("GET", `/results/${encodeURIComponent(latest.id)}/stop-conditions`).catch(() => null);
    }
    if (mine !== visit) return;
    mount(runSlot, runCard(experiment, latest, conditions));
    const badge = document.getElementById("experiment-status");  // the experiment's status is its latest run's
    if (badge) mount(badge, statusBadge(latest.status));
    stopButton.hidden = !can("operator") || FINAL.has(latest.status);
    runButton.disabled = !FINAL.has(latest.status);
    if (!FINAL.has(latest.status)) pollAgain(mine, refreshRun, POLL_MS);
  };

  const preview = async () => {
    mount(previewSlot, h("div", { class: "text-secondary mb-3" }, "Resolving the plan…"));
    try {
      mount(previewSlot, previewCard(await api("POST", `/experiments/${encodeURIComponent(id)}/preview`)));
    } catch (err) {
      mount(previewSlot, h("div", { class: "alert alert-danger" }, err.message));
    }
  };

  const askToRun = () => {
    const typed = h("input", { class: "form-control", id: "confirm-name", autocomplete: "off", spellcheck: "false" });
    const go = h("button", { class: "btn btn-danger", type: "submit", id: "confirm-run", disabled: true }, icon("play-fill"), " Run now");
    typed.addEventListener("input", () => { go.disabled = typed.value !== experiment.name; });
    const form = h("form", { class: "card border-danger mb-3", id: "confirm" }, h("div", { class: "card-body" },
      h("label", { class: "form-label", for: "confirm-name" }, "Type ", h("strong", { class: "mono" }, experiment.name), " to run it against real resources."),
      h("div", { class: "d-flex gap-2" }, typed, go,
        h("button", { class: "btn btn-outline-secondary", type: "button", onclick: () => confirmSlot.replaceChildren() }, "Cancel"))));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (typed.value !== experiment.name) return;
      go.disabled = true;
      try {
        const accepted = await api("POST", `/experiments/${encodeURIComponent(id)}/run`, {});
        toast(`Run ${accepted.result_id} started.`);
        confirmSlot.replaceChildren();
        latest = { id: accepted.result_id };
        await refreshRun();
      } catch (err) {
        mount(confirmSlot, h("div", { class: "alert alert-danger", role: "alert", id: "run-error" }, err.message));
      }
    });
    mount(confirmSlot, form);
    typed.focus();
  };

  const stop = async () => {
    stopButton.disabled = true;
    try {
      await api("POST", `/experiments/${encodeURIComponent(id)}/stop`, {});
      toast("Stop requested.", "warning");
    } catch (err) {
      toast(err.message, "danger");
    }
    stopButton.disabled = false;
    clearPoll();
    await refreshRun();
  };

  const remove = async () => {
    if (!confirm(`Delete experiment ${experiment.name} and its schedules? Its past results are kept.`)) return;
    try {
      await api("DELETE", `/experiments/${encodeURIComponent(id)}`);
      toast(`Deleted ${experiment.name}.`);
      location.hash = "#/experiments";
    } catch (err) {
      toast(err.message, "danger");
    }
  };

  const previewButton = h("button", { class: "btn btn-outline-primary", type: "button", id: "preview-button", onclick: preview }, icon("eye"), " Preview");
  const runButton = h("button", { class: "btn btn-danger", type: "button", id: "run-button", onclick: askToRun }, icon("play-fill"), " Run…");
  const stopButton = h("button", { class: "btn btn-warning", type: "button", id: "stop-button", onclick: stop, hidden: true }, icon("stop-fill"), " Stop");

  mount(main,
    h("nav", { "aria-label": "breadcrumb" }, h("ol", { class: "breadcrumb" },
      h("li", { class: "breadcrumb-item" }, h("a", { href: "#/experiments" }, "Experiments")),
      h("li", { class: "breadcrumb-item active", "aria-current": "page" }, experiment.name))),
    h("div", { class: "d-flex align-items-center flex-wrap gap-2 mb-3" },
      h("h1", { class: "h3 mb-0 me-2" }, experiment.name),
      h("span", { id: "experiment-status" }, statusBadge(experiment.status)),
      can("operator") ? h("div", { class: "ms-auto d-flex flex-wrap gap-2" }, previewButton, runButton, stopButton,
        h("a", { class: "btn btn-outline-secondary", href: `#/experiments/${encodeURIComponent(id)}/edit`, id: "edit-button" }, icon("pencil"), " Edit"),
        can("admin") ? h("button", { class: "btn btn-outline-danger", type: "button", id: "delete-button", onclick: remove }, icon("trash"), " Delete") : null) : null),
    experiment.description ? h("p", {}, experiment.description) : null,
    experiment.actions ? stepsSpec(experiment) : singleSpec(experiment),
    confirmSlot, previewSlot, runSlot,
    schedulesCard(id, can),
    h("h2", { class: "h5" }, "Past runs"),
    resilienceLine("experiments", id),
    results.length
      ? h("ul", { class: "list-unstyled", id: "past-runs" }, [...results].reverse().map((r) => h("li", {},
        statusBadge(r.status), " ", verdictBadge(r.verdict), " ", h("a", { href: `#/results/${encodeURIComponent(r.id)}` }, when(r.start_time) || r.id))))
      : h("p", { class: "text-secondary small" }, "Never run."),
  );
  await refreshRun();
}

export async function resultView(id, { main }) {
  await showResult(id, main, visit);
}

async function showResult(id, main, mine) {
  const result = await api("GET", `/results/${encodeURIComponent(id)}`);
  if (mine !== visit) return;
  const box = h("div", { id: "metrics" });
  mount(main,
    h("nav", { "aria-label": "breadcrumb" }, h("ol", { class: "breadcrumb" },
      h("li", { class: "breadcrumb-item" }, h("a", { href: "#/experiments" }, "Experiments")),
      h("li", { class: "breadcrumb-item" }, h("a", { href: `#/experiments/${encodeURIComponent(result.experiment_id)}` }, "Experiment")),
      h("li", { class: "breadcrumb-item active", "aria-current": "page" }, "Result"))),
    h("h1", { class: "h3" }, "Result ", h("span", { class: "mono small" }, result.id)),
    h("p", {}, `${result.fault} · ${when(result.start_time)} → ${when(result.end_time)} · `,
      result.verdict ? `${result.status}, verdict ${result.verdict}` : "in progress",
      result.stop_reason ? ` · stopped: ${result.stop_reason}` : ""),
    verdictBox(result),
    h("section", { id: "probes", "aria-labelledby": "probes-heading" },
      h("h2", { class: "h5", id: "probes-heading" }, "Probes"),
      h("p", { class: "small text-secondary" }, "Each probe's answers over the run; the fault windows are shaded, failed answers marked, a threshold dashed."),
      probeCharts(result)),
    h("h2", { class: "h5" }, "Stop conditions' metrics"),
    h("p", { class: "small text-secondary" }, "From before the run to after it; the fault window is shaded, the alarm threshold dashed."),
    box,
    runCard(null, result, null),
  );
  await showMetrics(id, result, box, mine);
  if (!FINAL.has(result.status)) pollAgain(mine, () => showResult(id, main, mine), RESULT_POLL_MS);
}

const VERDICT_CLASSES = { passed: "text-bg-success", failed: "text-bg-danger", inconclusive: "text-bg-warning" };
const PROBE_PHASES = { before: ["before"], during: ["during"], after: ["after"], edge: ["before", "after"] };

/** Why the run's verdict is what it is, in a sentence (docs/probes.md: The verdict). */
function verdictReason(result) {
  const probes = result.probes || [];
  const records = result.probe_records || {};
  const failedIn = (phases) => Object.values(records).filter((r) => phases.includes(r.failed_in)).map((r) => r.name);
  if (!result.verdict) return "Given when the run ends.";
  if (result.verdict === "failed") {
    return `Probe ${failedIn(["during", "after"]).join(", ")} failed: the system did not hold.`;
  }
  if (result.verdict === "passed") return "Every probe was asked in each of its phases, and none failed.";
  if (!probes.length) return "Inconclusive: no probes. A run that only completed proves nothing about the system.";
  const before = failedIn(["before"]);
  if (before.length) return `Inconclusive: the steady state did not hold before anything was injected (${before.join(", ")}); the run tested nothing.`;
  const unasked = probes.filter((p) => {
    const asked = new Set(((records[p.name] || {}).evaluations || []).map((e) => e.phase));
    return !(PROBE_PHASES[p.mode] || []).every((phase) => asked.has(phase));
  }).map((p) => p.name);
  return `Inconclusive: not every probe was asked in each of its phases${unasked.length ? ` (${unasked.join(", ")})` : ""}.`;
}

function verdictBox(result) {
  const verdict = result.verdict || "pending";
  return h("div", { class: "d-flex align-items-center flex-wrap gap-2 mb-3", id: "verdict-box" },
    h("strong", {}, "Verdict"),
    h("span", { class: `badge fs-6 ${VERDICT_CLASSES[verdict] || "text-bg-secondary"}`, id: "verdict", dataset: { verdict } },
      result.verdict || "in progress"),
    h("span", { id: "verdict-reason" }, verdictReason(result)));
}

// The chart kept when a run ends stops at its end. Until the minutes after it are in (the API's
// `complete_at`), the page reads the metrics again; the API then keeps the complete chart.
async function showMetrics(id, result, box, mine) {
  let chart = result.metrics && result.metrics.stop_conditions;
  if (result.stop_conditions.length && !(chart && chart.complete)) {
    chart = await api("GET", `/results/${encodeURIComponent(id)}/metrics`).catch(() => chart);
  }
  if (mine !== visit) return;
  const until = chart && chart.complete_at ? Date.parse(chart.complete_at) : null;
  // Past `complete_at` (plus a little for a slow read) the page stops asking, complete or not.
  const filling = FINAL.has(result.status) && chart && chart.series && chart.series.length && !chart.complete
    && until !== null && Date.now() < until + AFTER_GRACE_MS;
  mount(box, metricCharts(chart, filling ? chart.until : null), filling
    ? h("p", { class: "small text-secondary", id: "metrics-filling" }, icon("hourglass-split"),
      ` The minutes after the run are still coming in; this chart fills in until ${when(chart.complete_at)}.`)
    : null);
  if (filling) pollAgain(mine, () => showMetrics(id, result, box, mine), AFTER_POLL_MS);
}

const AFTER_POLL_MS = 30000;
const AFTER_GRACE_MS = 120000;
