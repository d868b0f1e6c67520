// One Chart.js line chart per stop condition: its CloudWatch metric from before the run to after
// it, the alarm's threshold as a dashed line, and the fault window shaded.

import { h } from "./dom.js";

const time = (iso) => Date.parse(iso);

// Chart.js has no annotations without a plugin; this one shades [fault_start, fault_end].
const faultWindow = {
  id: "faultWindow",
  beforeDatasetsDraw(chart, _args, options) {
    if (options.start == null) return;
    const { ctx, chartArea, scales } = chart;
    const left = Math.max(chartArea.left, scales.x.getPixelForValue(options.start));
    let right = Math.min(chartArea.right, scales.x.getPixelForValue(options.end));
    if (right < left) return;
    right = Math.max(right, left + 3);  // a fault of seconds in a window of minutes stays visible
    ctx.save();
    ctx.fillStyle = "rgba(220, 53, 69, 0.12)";
    ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
    ctx.restore();
  },
};

/** `until`: where the time axis ends when it should reach past the points read so far (the end of
 * the minutes after a run that has just ended), so the chart shows the room still to fill. */
export function metricCharts(chart, until = null) {
  if (!chart || !chart.series || !chart.series.length) {
    return h("p", { class: "text-secondary small", id: "no-metrics" }, "No stop conditions: nothing to chart.");
  }
  const from = time(chart.from);
  const to = Math.max(time(chart.to), until ? time(until) : 0);
  const start = chart.fault_start ? time(chart.fault_start) : null;
  const end = chart.fault_end ? time(chart.fault_end) : null;
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
      datasets.push({
        label: `threshold (${s.comparison || ""} ${s.threshold})`,
        data: [{ x: from, y: s.threshold }, { x: to, y: s.threshold }],
        borderColor: "#dc3545",
        borderDash: [6, 4],
        pointRadius: 0,
      });
    }
    // Drawn once the canvas is in the page (Chart.js measures its parent).
    requestAnimationFrame(() => new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: "linear", min: from, max: to, ticks: { callback: (v) => new Date(v).toLocaleTimeString(), maxTicksLimit: 8 } },
          y: { beginAtZero: true },
        },
        plugins: { faultWindow: { start, end }, legend: { position: "bottom" } },
      },
      plugins: [faultWindow],
    }));
    return box;
  });
}
