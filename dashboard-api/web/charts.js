// Small SVG bar charts (no library: the halls' networks are closed).
import { svg } from "/ui/assets/common.js";

const SERIES = [["warning", "预警"], ["yellow", "黄牌"], ["red", "红牌"]];

/// A round top for an axis of four steps: the step is 1, 2 or 5 × 10^k.
function niceMax(v) {
  const raw = Math.max(1, v) / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw && Number.isInteger(s)) || Math.ceil(raw);
  return step * 4;
}

/// Vertical stacked bars, one per {label, warning, yellow, red}.
export function columns(data, title) {
  const W = 640, H = 260, L = 40, B = 36, T = 14, R = 10;
  const max = niceMax(Math.max(1, ...data.map((d) => d.warning + d.yellow + d.red)));
  const y = (v) => H - B - (v / max) * (H - B - T);
  const band = (W - L - R) / Math.max(1, data.length);
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    parts.push(svg("line", { class: "gridline", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    parts.push(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, Math.round(v)));
  }
  data.forEach((d, i) => {
    let base = 0;
    const x = L + i * band + band * 0.18;
    for (const [k, name] of SERIES) {
      if (d[k] > 0) {
        parts.push(svg("rect", { class: "bar-" + k, x, width: band * 0.64, y: y(base + d[k]), height: y(base) - y(base + d[k]) },
          svg("title", {}, `${d.label} ${name} ${d[k]}`)));
      }
      base += d[k];
    }
    if (base > 0) parts.push(svg("text", { x: x + band * 0.32, y: y(base) - 3, "text-anchor": "middle" }, base));
    parts.push(svg("text", { x: x + band * 0.32, y: H - B + 16, "text-anchor": "middle" }, d.label));
  });
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, parts);
}

/// Horizontal stacked bars, one row per {label, warning, yellow, red}.
export function rows(data, title) {
  const W = 640, row = 22, L = 130, R = 40, T = 6;
  const H = T * 2 + Math.max(1, data.length) * row;
  const max = niceMax(Math.max(1, ...data.map((d) => d.warning + d.yellow + d.red)));
  const x = (v) => L + (v / max) * (W - L - R);
  const parts = [];
  data.forEach((d, i) => {
    const yy = T + i * row;
    parts.push(svg("text", { x: L - 6, y: yy + 15, "text-anchor": "end" }, d.label.length > 9 ? d.label.slice(0, 9) + "…" : d.label));
    let base = 0;
    for (const [k, name] of SERIES) {
      if (d[k] > 0) {
        parts.push(svg("rect", { class: "bar-" + k, x: x(base), y: yy + 4, height: row - 8, width: x(base + d[k]) - x(base) },
          svg("title", {}, `${d.label} ${name} ${d[k]}`)));
      }
      base += d[k];
    }
    parts.push(svg("text", { x: x(base) + 4, y: yy + 15 }, base));
  });
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, parts);
}

/// The status of a source (GET /api/v1/sources): 在线 (live), 迟报 (late), 静默 (silent).
export const SOURCE_STATUS = { live: "在线", late: "迟报", silent: "静默" };

/// A source's name as the pages show it: its sources.csv name, else 未命名 and its code.
export function sourceLabel(s) {
  return s.name || `未命名（${s.source || "无来源"}）`;
}

/// A sparkline of daily counts, coloured by the source's status (class `spark-<status>`).
export function sparkline(values, status, title) {
  const W = 120, H = 28, P = 2;
  const max = Math.max(1, ...values);
  const x = (i) => P + (values.length > 1 ? (i / (values.length - 1)) * (W - 2 * P) : (W - 2 * P) / 2);
  const y = (v) => H - P - (v / max) * (H - 2 * P);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  return svg("svg", { class: "spark spark-" + status, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": title },
    svg("title", {}, title),
    svg("polyline", { points, fill: "none" }),
    values.length ? svg("circle", { cx: x(values.length - 1), cy: y(values[values.length - 1]), r: 2 }) : null);
}
