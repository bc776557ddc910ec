// A small SVG line chart: no library, scales with its box (viewBox), nulls are gaps.

import { h } from "./dom.js";

const W = 320;
const H = 140;
const PAD = { left: 40, right: 8, top: 20, bottom: 18 };

function nice(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= max);
}

function label(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toPrecision(2);
}

/** series: [{label, points: [[t, value or null], ...], color: 0..2}], over the same times.
 * ``data-max`` on the chart is its largest value, so a reader (or a test) can tell an
 * empty chart from one with traffic. */
export function lineChart({ title, unit, series, testid }) {
  const points = series.flatMap((s) => s.points);
  const times = points.map(([t]) => t);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const max = Math.max(0, ...points.map(([, v]) => v ?? 0));
  const top = nice(max);
  const x = (t) => PAD.left + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const paths = series.map((s, i) => {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    }
    // a value with no neighbour draws no line: a dot shows it
    const dots = s.points.filter(([, v], j) => v !== null && v !== undefined
      && (s.points[j - 1]?.[1] ?? null) === null && (s.points[j + 1]?.[1] ?? null) === null)
      .map(([t, v]) => h("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2,
        class: `legend${s.color ?? i}` }));
    return h("g", {}, dots, h("path", { d: d.trim() || `M${PAD.left},${y(0)}`, class: `s${s.color ?? i}` },
      h("title", {}, s.label)));
  });
  const minutes = Math.round((t1 - t0) / 60);
  return h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": title, testid, "data-max": String(max) },
    h("text", { x: PAD.left, y: 12 }, `${title} (${unit})`),
    series.map((s, i) => h("g", {},
      h("rect", { x: W - 70 * (series.length - i), y: 4, width: 8, height: 8,
        class: `legend${s.color ?? i}` }),
      h("text", { x: W - 70 * (series.length - i) + 11, y: 12 }, s.label))),
    h("line", { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom,
      class: "axis" }),
    h("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: "axis" }),
    h("text", { x: 2, y: PAD.top + 4 }, label(top)),
    h("text", { x: 2, y: H - PAD.bottom }, "0"),
    h("text", { x: PAD.left, y: H - 4 }, `-${minutes}m`),
    h("text", { x: W - PAD.right - 18, y: H - 4 }, "now"),
    paths);
}
