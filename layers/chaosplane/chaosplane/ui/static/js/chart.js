// Chart.js line charts on the result page: one per stop condition (its CloudWatch metric from
// before the run to after it, the alarm's threshold dashed) and one per probe (its values over the
// run, each evaluation ok or failed, its threshold dashed); the fault windows shaded on each.

import { h, when } from "./dom.js";

const time = (iso) => Date.parse(iso);

// Chart.js has no annotations without a plugin; this one shades each [start, end] of
// `options.windows` (an end of null: held so far, to the axis' end).
const faultWindows = {
  id: "faultWindows",
  beforeDatasetsDraw(chart, _args, options) {
    const { ctx, chartArea, scales } = chart;
    for (const [start, end] of options.windows || []) {
      if (start == null) continue;
      const left = Math.max(chartArea.left, scales.x.getPixelForValue(start));
      let right = Math.min(chartArea.right, scales.x.getPixelForValue(end == null ? scales.x.max : end));
      if (!(right >= left)) continue;
      right = Math.max(right, left + 3);  // a fault of seconds in a window of minutes stays visible
      ctx.save();
      ctx.fillStyle = "rgba(220, 53, 69, 0.12)";
      ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
      ctx.restore();
    }
  },
};

// `includeBounds`: a tick at each end too (a run of seconds: no, its ends are not whole seconds).
const timeAxis = (min, max, includeBounds = true) => ({ type: "linear", min, max,
  ticks: { callback: (v) => new Date(v).toLocaleTimeString(), maxTicksLimit: 8, includeBounds } });

/** Drawn once the canvas is in the page (Chart.js measures its parent). */
function draw(canvas, datasets, { from, to, windows, bounds = true }) {
  requestAnimationFrame(() => new window.Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      scales: { x: timeAxis(from, to, bounds), y: { beginAtZero: true } },
      plugins: { faultWindows: { windows }, legend: { position: "bottom" } },
    },
    plugins: [faultWindows],
  }));
}

function thresholdLine(label, value, from, to) {
  return {
    label, data: [{ x: from, y: value }, { x: to, y: value }], borderColor: "#dc3545", borderDash: [6, 4], pointRadius: 0,
  };
}

/** `until`: where the time axis ends when it should reach past the points read so far (the end of
 * the minutes after a run that has just ended), so the chart shows the room still to fill. */
export function metricCharts(chart, until = null) {
  if (!chart || !chart.series || !chart.series.length) {
    return h("p", { class: "text-secondary small", id: "no-metrics" }, "No stop conditions: nothing to chart.");
  }
  const from = time(chart.from);
  const to = Math.max(time(chart.to), until ? time(until) : 0);
  const windows = chart.fault_start ? [[time(chart.fault_start), chart.fault_end ? time(chart.fault_end) : null]] : [];
  return chart.series.map((s) => {
    const canvas = h("canvas", { role: "img", "aria-label": `${s.alarm}: ${s.label || "metric"} with the fault window shaded` });
    const box = h("div", { class: "card mb-3 metric-chart", dataset: { alarm: s.alarm } }, h("div", { class: "card-body" },
      h("h3", { class: "h6" }, s.alarm, " ", h("span", { class: "text-secondary small" }, s.label || "")),
      s.note ? h("p", { class: "text-secondary small mb-0" }, s.note) : h("div", { class: "chart-box" }, canvas)));
    if (s.note || !window.Chart) return box;
    const datasets = [{
      label: s.label || s.alarm,
      data: s.timestamps.map((t, i) => ({ x: time(t), y: s.values[i] })),
      borderColor: "#0d6efd",
      backgroundColor: "#0d6efd",
      pointRadius: 2,
      tension: 0,
    }];
    if (typeof s.threshold === "number") {
      datasets.push(thresholdLine(`threshold (${s.comparison || ""} ${s.threshold})`, s.threshold, from, to));
    }
    draw(canvas, datasets, { from, to, windows });
    return box;
  });
}

// -- probes ---------------------------------------------------------------------------------------

const PHASES = { before: ["before"], during: ["during"], after: ["after"], edge: ["before", "after"] };
const PHASE_WORDS = { before: "before the faults", during: "during the faults", after: "after the faults" };
const FINAL = new Set(["completed", "stopped", "failed", "skipped"]);
const OK = "#0d6efd";
const FAILED = "#dc3545";

/** Each action's time in force: [in_force_at, end_time] (an end of null: held so far). */
export function faultWindowsOf(result) {
  return Object.values(result.actions || {}).filter((a) => a.in_force_at)
    .map((a) => [time(a.in_force_at), a.end_time ? time(a.end_time) : null]);
}

/** What the probe asks, in a line. */
function question(p) {
  switch (p.source) {
    case "http": return `${p.method || "GET"} ${p.url}, expecting ${(p.expected_status || [200]).join(" or ")}`
      + (p.max_latency_ms ? ` within ${p.max_latency_ms} ms` : "") + (p.body_regex ? `, body matching ${p.body_regex}` : "")
      + (p.body_jsonpath ? `, ${p.body_jsonpath}` + (p.body_equals != null ? ` = ${JSON.stringify(p.body_equals)}` : " present") : "");
    case "prometheus": return `${p.query} ${p.comparison} ${p.threshold} (${p.url})`;
    case "cloudwatch-metric": return `${p.expression || [p.namespace, p.metric_name].join(" ")} ${p.statistic || ""} ${p.comparison} ${p.threshold}`;
    case "cloudwatch-alarm": return `alarm ${p.alarm} not in ALARM`;
    case "kubernetes": return p.check === "ready-replicas"
      ? `${p.kind} ${p.namespace}/${p.workload} on ${p.cluster}: at least ${p.min_ready} ready`
      : `no pod of ${p.selector} in ${p.namespace} on ${p.cluster} in CrashLoopBackOff`;
    default: return "";
  }
}

/** What the chart's y axis is, and the probe's line on it (null: none). */
function measure(p) {
  switch (p.source) {
    case "http": return { label: "latency (ms)", threshold: p.max_latency_ms ?? null, line: `max ${p.max_latency_ms} ms` };
    case "prometheus":
    case "cloudwatch-metric": return { label: p.source === "prometheus" ? "value" : (p.metric_name || "value"),
      threshold: typeof p.threshold === "number" ? p.threshold : null, line: `threshold (${p.comparison} ${p.threshold})` };
    case "kubernetes": return p.check === "ready-replicas"
      ? { label: "ready replicas", threshold: p.min_ready ?? null, line: `at least ${p.min_ready}` }
      : { label: "pods in CrashLoopBackOff", threshold: null };
    default: return { label: "value", threshold: null };
  }
}

/** The probe's outcome: a status (passed, failed, not-asked, asking) and a sentence. */
export function probeOutcome(probe, record, result) {
  const evaluations = (record && record.evaluations) || [];
  const last = evaluations[evaluations.length - 1];
  if (record && record.failed_in) {
    const inPhase = evaluations.filter((e) => e.phase === record.failed_in);
    const detail = (inPhase[inPhase.length - 1] || last || {}).detail;
    return { status: "failed", text: `Failed ${PHASE_WORDS[record.failed_in] || record.failed_in} at ${when(record.failed_at)}${detail ? `: ${detail}` : ""}` };
  }
  if (!FINAL.has(result.status)) {
    return { status: "asking", text: `Being asked: ${evaluations.length} evaluation${evaluations.length === 1 ? "" : "s"} so far${last && last.detail ? `, the latest: ${last.detail}` : ""}` };
  }
  const asked = new Set(evaluations.map((e) => e.phase));
  const missing = (PHASES[probe.mode] || []).filter((phase) => !asked.has(phase));
  if (missing.length) return { status: "not-asked", text: `Never asked ${missing.join(" or ")} the faults` };
  return { status: "passed", text: `Passed${last && last.detail ? `: ${last.detail}` : ""}` };
}

function badges(evaluations) {
  const phases = [...new Set(evaluations.map((e) => e.phase))];
  return h("dl", { class: "probe-evaluations small mb-0" }, phases.map((phase) => [
    h("dt", {}, phase),
    h("dd", {}, h("ol", { class: "list-inline mb-1" }, evaluations.filter((e) => e.phase === phase).map((e) =>
      h("li", { class: "list-inline-item", title: `${when(e.at)}: ${e.detail || ""}` },
        h("span", { class: `badge text-bg-${e.ok ? "success" : "danger"}`, dataset: { ok: String(e.ok) } }, e.ok ? "ok" : "failed"),
        h("span", { class: "visually-hidden" }, ` at ${when(e.at)}${e.detail ? `: ${e.detail}` : ""}`))))),
  ]));
}

const OUTCOME_CLASS = { passed: "text-success", failed: "text-danger", "not-asked": "text-warning-emphasis", asking: "text-secondary" };

/** One card per probe (`.probe-chart[data-probe]`): its values over the run as a line chart, each
 * evaluation marked ok or failed, its threshold dashed and the fault windows shaded; a probe
 * without values (an alarm's) as its evaluations' badges. */
export function probeCharts(result) {
  const probes = result.probes || [];
  if (!probes.length) return h("p", { class: "text-secondary small", id: "no-probes" }, "No probes: nothing was asked of the system.");
  const records = result.probe_records || {};
  const windows = faultWindowsOf(result);
  return probes.map((probe) => {
    const record = records[probe.name];
    const evaluations = (record && record.evaluations) || [];
    const outcome = probeOutcome(probe, record, result);
    const valued = evaluations.filter((e) => typeof e.value === "number");
    const without = evaluations.filter((e) => typeof e.value !== "number");
    const m = measure(probe);
    const failedCount = evaluations.filter((e) => !e.ok).length;
    const canvas = valued.length ? h("canvas", { role: "img", "aria-label":
      `${probe.name}: ${m.label} over the run, ${evaluations.length} evaluations, ${failedCount} failed; the fault windows shaded` }) : null;
    const card = h("div", { class: "card mb-3 probe-chart", dataset: { probe: probe.name, status: outcome.status } }, h("div", { class: "card-body" },
      h("h3", { class: "h6 mb-1" }, probe.name, " ",
        h("span", { class: "text-secondary small fw-normal" }, `${probe.source} · ${probe.mode} · every ${probe.interval} s`
          + (probe.tolerance > 1 ? ` · ${probe.tolerance} failures in a row` : ""))),
      h("p", { class: "small mono text-break mb-1" }, question(probe)),
      h("p", { class: `small fw-semibold probe-outcome ${OUTCOME_CLASS[outcome.status] || ""}` }, outcome.text),
      canvas ? h("div", { class: "chart-box" }, canvas) : null,
      !evaluations.length ? h("p", { class: "text-secondary small mb-0" }, "Not asked yet.") : null,
      without.length && valued.length ? h("p", { class: "small text-secondary mb-1 mt-2" }, "Evaluations without a value:") : null,
      without.length ? badges(without) : null));
    if (!canvas || !window.Chart) return card;
    const points = valued.map((e) => ({ x: time(e.at), y: e.value }));
    const xs = [...evaluations.map((e) => time(e.at)), ...windows.flat().filter((t) => t != null)];
    const from = Math.min(result.start_time ? time(result.start_time) : Infinity, ...xs);
    const to = Math.max(result.end_time ? time(result.end_time) : Date.now(), ...xs);
    const datasets = [{
      label: m.label,
      data: points,
      borderColor: OK,
      backgroundColor: OK,
      pointBackgroundColor: valued.map((e) => (e.ok ? OK : FAILED)),
      pointBorderColor: valued.map((e) => (e.ok ? OK : FAILED)),
      pointRadius: 3,
      tension: 0,
    }];
    const failed = valued.filter((e) => !e.ok);
    if (failed.length) {
      datasets.push({
        label: "failed", data: failed.map((e) => ({ x: time(e.at), y: e.value })), showLine: false,
        borderColor: FAILED, backgroundColor: FAILED, pointStyle: "crossRot", pointRadius: 7, pointBorderWidth: 2,
      });
    }
    if (typeof m.threshold === "number") datasets.push(thresholdLine(m.line, m.threshold, from, to));
    draw(canvas, datasets, { from, to, windows, bounds: to - from > 120000 });
    return card;
  });
}
