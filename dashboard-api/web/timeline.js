// Drawing a case's deadline evidence (start, pauses, extensions, deadlines) as a timeline, and
// naming the events of a case's history.
import { fmtTime, names, svg } from "/ui/assets/common.js";
import { ZH } from "/ui/assets/evidence.js";

export const EVENT_KINDS = ZH.kind;

const PAUSE_KINDS = ZH.pause;

/// An SVG timeline of the evidence, or null when it has no deadline to draw.
export function evidenceTimeline(ev, nowMs) {
  if (!ev || typeof ev !== "object") return null;
  const t = (iso) => (iso ? Date.parse(iso) : NaN);
  const start = t(ev.accepted_at) || t(ev.submitted_at) || (ev.start ? Date.parse(ev.start + "T00:00:00+08:00") : NaN);
  const marks = [];
  const push = (cls, at, label, when) => { if (!isNaN(at)) marks.push({ cls, at, label, when }); };
  push("start", start, "起算");
  // A deadline instant is the end of its day: shown as the day ("截至 09-10"), as the rules say it.
  const day = (d) => (d ? "截至 " + d.slice(5) : null);
  push("deadline", t(ev.deadline), "办结期限", day(ev.deadline_date));
  push("legal", t(ev.legal_deadline), "法定期限", day(ev.legal_deadline_date));
  push("supervision", t(ev.supervision_deadline), "督办期限", day(ev.supervision_date));
  for (const x of ev.extensions || []) push("extension", t(x.at), `延长 ${x.extra_days} 天${x.applied ? "" : "（未生效）"}`);
  // The case's current state (SPEC §7): once it is finished, the axis ends at its 办结 and the
  // overdue band with it, whenever "now" is.
  const state = ev.subject_state || {};
  const closed = state.status && state.status !== "open" ? t(state.closed_at) : NaN;
  if (!isNaN(closed)) {
    const late = state.overdue_working_days;
    push("closed", closed, state.status === "rejected" ? "不予受理" : late > 0 ? `办结（超期 ${late} 个工作日）` : "办结");
    nowMs = closed;
  }
  if (marks.length < 2) return null;
  const pauses = (ev.pauses || []).map((p) => ({ from: t(p.from), to: t(p.to) || nowMs, kinds: p.kinds || [] }))
    .filter((p) => !isNaN(p.from));
  const known = marks.map((m) => m.at).concat(pauses.flatMap((p) => [p.from, p.to]));
  const lo = Math.min(...known);
  let hi = Math.max(...known);
  // "Now" long after the last deadline would squeeze the evidence into a corner: the axis ends
  // a little after the evidence and an arrow says how far "now" is.
  const far = nowMs > hi + (hi - lo) * 0.5;
  hi = far ? hi + (hi - lo) * 0.15 : Math.max(hi, nowMs);
  const span = Math.max(hi - lo, 3600e3);
  const W = 720, L = 40, R = 70, Y = 78;
  const x = (at) => L + ((Math.min(at, hi) - lo) / span) * (W - L - R);
  const parts = [];
  const deadline = t(ev.deadline);
  if (!isNaN(deadline) && nowMs > deadline) {
    parts.push(svg("rect", { class: "late", x: x(deadline), y: Y - 8, width: Math.max(1, x(isNaN(closed) ? hi : closed) - x(deadline)), height: 16 },
      svg("title", {}, isNaN(closed) ? "超过办结期限" : "超过办结期限至办结")));
  }
  for (const p of pauses) {
    parts.push(svg("rect", { class: "pause", x: x(p.from), y: Y - 8, width: Math.max(2, x(p.to) - x(p.from)), height: 16 },
      svg("title", {}, "暂停：" + p.kinds.map((k) => PAUSE_KINDS[k] || "暂停").join("、"))));
  }
  parts.push(svg("line", { class: "axis", x1: L, x2: x(hi), y1: Y, y2: Y }));
  if (far && isNaN(closed)) {
    parts.push(svg("line", { class: "mark now", x1: x(hi), x2: W - 8, y1: Y, y2: Y }));
    parts.push(svg("text", { x: W - 4, y: Y - 6, "text-anchor": "end" }, "当前 " + fmtTime(new Date(nowMs).toISOString())));
  } else if (isNaN(closed)) {
    push("now", nowMs, "当前");
  }
  // Labels go to the first of four rows (near above, near below, far above, far below) where
  // they do not overlap the previous label of that row.
  const rows = [{ y: -22, end: -1e9 }, { y: 34, end: -1e9 }, { y: -50, end: -1e9 }, { y: 62, end: -1e9 }];
  marks.sort((a, b) => a.at - b.at).forEach((m) => {
    const cx = x(m.at);
    const width = Math.max(m.label.length * 12, 66);
    const left = Math.max(0, Math.min(cx - width / 2, W - width));
    const row = rows.find((r) => left > r.end + 4) || rows[rows.length - 1];
    row.end = left + width;
    const up = row.y < 0;
    parts.push(svg("line", { class: "mark " + m.cls, x1: cx, x2: cx, y1: up ? Y + row.y + 4 : Y - 10, y2: up ? Y + 10 : Y + row.y - 14 }));
    parts.push(svg("text", { x: left + width / 2, y: Y + row.y - (up ? 12 : 0), "text-anchor": "middle" }, m.label));
    parts.push(svg("text", { x: left + width / 2, y: Y + row.y + (up ? 0 : 12), "text-anchor": "middle" }, m.when || fmtTime(new Date(m.at).toISOString())));
  });
  return svg("svg", { viewBox: `0 0 ${W} 160`, role: "img", "aria-label": "时限时间轴" }, parts);
}

const DETAIL = {
  reason: (v) => "原因：" + v, result: (v) => "结果：" + (ZH.result[v] || "（未知）"),
  stage: (v) => "环节：" + (ZH.stage[v] || "（未知）"),
  procedure: (v) => "程序：" + (ZH.procedure[v] || "（未知）"), extra_days: (v) => `延长 ${v} 天`,
  limit_days: (v) => `时限 ${v} 天`,
  amount_fen: (v) => `金额 ${(v / 100).toFixed(2)} 元`, score: (v) => `评分 ${v}`,
  category: (v) => "类别：" + (ZH.category[v] || "（未知）"),
  to_department: (v) => "转至 " + names.dept(v), channel: (v) => "渠道：" + (ZH.channel[v] || "（未知）"),
};

/// The detail of one event of a case's history, in words.
export function eventDetail(e) {
  const bits = [];
  if (e.window_id) bits.push(names.window(e.window_id));
  if (e.staff_id) bits.push(names.staff(e.staff_id));
  for (const [k, f] of Object.entries(DETAIL)) {
    if (e[k] !== undefined && e[k] !== null && e[k] !== "") bits.push(f(e[k]));
  }
  return bits.join(" · ");
}
