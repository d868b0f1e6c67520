// A tiny element builder: text always goes in as text nodes (never innerHTML), so names and
// messages from the API cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {  // nested lists of children, as views build them
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const icon = (name) => h("i", { class: `bi bi-${name}`, "aria-hidden": "true" });

export function mount(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

const STATUS_CLASSES = {
  created: "text-bg-secondary",
  pending: "text-bg-info",
  running: "text-bg-primary",
  completed: "text-bg-success",
  stopped: "text-bg-warning",
  failed: "text-bg-danger",
  skipped: "text-bg-light border",
};

export const statusBadge = (status) =>
  h("span", { class: `badge ${STATUS_CLASSES[status] || "text-bg-secondary"}`, dataset: { status } }, status);

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function toast(message, kind = "success") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `alert alert-${kind} shadow-sm mb-2`, role: kind === "danger" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), 5000);
}
