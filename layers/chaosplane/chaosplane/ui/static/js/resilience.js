// The resilience score of an experiment or a target: how often the system held over its last
// runs (the share of decisive verdicts that passed; docs/probes.md). Filled in when it arrives.

import { api } from "./api.js";
import { h } from "./dom.js";

const VERDICT_CLASSES = { passed: "text-bg-success", failed: "text-bg-danger", inconclusive: "text-bg-secondary" };

export const verdictBadge = (verdict) =>
  h("span", { class: `badge ${VERDICT_CLASSES[verdict] || "text-bg-light"}`, dataset: { verdict: verdict || "pending" } }, verdict || "pending");

/** `kind`: "experiments" or "targets". */
export function resilienceLine(kind, id) {
  const line = h("p", { class: "small", id: "resilience" }, "Resilience: …");
  api("GET", `/${kind}/${encodeURIComponent(id)}/resilience`).then((r) => {
    const score = r.score === null ? "no decisive run yet" : `${r.score}%`;
    line.replaceChildren(h("strong", {}, "Resilience: "), h("span", { id: "resilience-score" }, score),
      h("span", { class: "text-secondary" },
        ` (${r.passed} passed, ${r.failed} failed, ${r.inconclusive} inconclusive of the last ${r.runs} run(s))`));
  }).catch(() => line.replaceChildren("Resilience: unavailable."));
  return line;
}
