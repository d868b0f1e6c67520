// Copies the pinned third-party files the dashboard loads into the package's static folder, so the
// API serves them itself: the page works with no internet and under a strict CSP (no CDN).
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "..", "layers", "chaosplane", "chaosplane", "ui", "static", "vendor");

// [source under node_modules, destination under vendor/]: a flat layout (the API's routes take one
// path segment per level), with the icon fonts in fonts/ where bootstrap-icons.min.css looks.
const files = [
  ["bootstrap/dist/css/bootstrap.min.css", "bootstrap.min.css"],
  ["bootstrap/dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"],
  ["bootstrap-icons/font/bootstrap-icons.min.css", "bootstrap-icons.min.css"],
  ["bootstrap-icons/font/fonts/bootstrap-icons.woff2", "fonts/bootstrap-icons.woff2"],
  ["bootstrap-icons/font/fonts/bootstrap-icons.woff", "fonts/bootstrap-icons.woff"],
  ["chart.js/dist/chart.umd.min.js", "chart.umd.min.js"],
];

rmSync(vendor, { recursive: true, force: true });
for (const [from, to] of files) {
  mkdirSync(dirname(join(vendor, to)), { recursive: true });
  copyFileSync(join(modules, from), join(vendor, to));
}
console.log(`copied ${files.length} files into ${vendor}`);
