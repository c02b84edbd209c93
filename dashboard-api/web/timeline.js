// Drawing a case's deadline evidence (start, pauses, extensions, deadlines) as a timeline, and
// naming the events of a case's history.
import { el, fmtTime, names, svg } from "/ui/assets/common.js";

export const EVENT_KINDS = {
  "case.submitted": "申请", "case.accepted": "受理", "case.rejected": "不予受理",
  "case.supplement_requested": "补正告知", "case.supplement_received": "补正受理",
  "case.stage": "审批环节", "case.transferred": "转办", "case.special_started": "特别程序开始",
  "case.special_ended": "特别程序结束", "case.suspended": "挂起", "case.resumed": "解挂",
  "case.extended": "延长审批", "case.completed": "办结", "case.delivered": "出件",
  "case.archived": "归档", "fee.charged": "收费", "complaint.filed": "投诉",
  "complaint.resolved": "投诉办结", "evaluation.submitted": "好差评", "evaluation.rectified": "差评整改",
  "staff.signed_in": "签到", "staff.signed_out": "签退", "window.opened": "开窗",
  "window.paused": "暂停", "window.closed": "关窗", "queue.ticket_issued": "取号", "queue.ticket_called": "叫号",
};

const PAUSE_KINDS = { suspension: "挂起", supplement: "补正", special: "特别程序" };
const UNIT = { working: "个工作日", natural: "个自然日" };

/// The evidence as a list a person can check by hand.
export function evidenceFacts(ev) {
  if (!ev || typeof ev !== "object") return null;
  const rows = [];
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") rows.push(el("dt", {}, k), el("dd", {}, v)); };
  add("起算", ev.accepted_at ? fmtTime(ev.accepted_at, true) + "（受理）" : ev.start);
  if (ev.limit) add("承诺时限", `${ev.limit.days} ${UNIT[ev.limit.unit] || ev.limit.unit}`);
  if (ev.legal_limit) add("法定时限", `${ev.legal_limit.days} ${UNIT[ev.legal_limit.unit] || ev.legal_limit.unit}`);
  if (ev.pause_days) add("暂停", `${ev.pause_days} 天（${(ev.pauses || []).length} 次）`);
  if (ev.extension_days) add("延长", `${ev.extension_days} 天`);
  add("办结期限", ev.deadline_date || (ev.deadline && fmtTime(ev.deadline, true)));
  add("法定期限", ev.legal_deadline_date);
  add("督办期限", ev.supervision_date);
  if (!rows.length) return null;
  return el("dl", { class: "facts" }, rows);
}

const EVIDENCE_KEYS = {
  called_at: "叫号时间", issued_at: "取号时间", deadline: "期限", department: "部门", window_id: "窗口",
  staff_id: "人员", case_id: "办件", ticket_no: "号票", max_wait_minutes: "最长等候（分钟）",
  item_code: "事项", receipt_no: "票据号", amount_fen: "金额（分）", fee_fen: "收费标准（分）",
  complaint_id: "投诉编号", evaluation_id: "评价编号", score: "评分", category: "类别",
  occurred_at: "发生时间", filed_at: "投诉时间", event_id: "事件编号", received_at: "接收时间", reported_at: "上报时间", count: "次数",
  window_days: "统计天数", satisfaction: "满意率", evaluations: "评价数", threshold: "阈值",
  unstaffed_minutes: "空岗时长（分钟）", opened_at: "开窗时间", since: "起始时间",
};

const CATEGORY = { attitude: "服务态度", efficiency: "办事效率", fee: "收费", integrity: "廉洁", other: "其他" };

/// Any other rule's evidence, key by key (times shortened), for checking by hand.
export function evidenceList(ev) {
  if (!ev || typeof ev !== "object" || !Object.keys(ev).length) return null;
  const show = (v) => {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}T/.test(v)) return fmtTime(v, true);
    if (CATEGORY[v]) return CATEGORY[v];
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };
  return el("dl", { class: "facts evidence" }, Object.entries(ev).flatMap(([k, v]) => [el("dt", { title: k }, EVIDENCE_KEYS[k] || k), el("dd", {}, show(v))]));
}

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
    parts.push(svg("rect", { class: "late", x: x(deadline), y: Y - 8, width: Math.max(1, x(hi) - x(deadline)), height: 16 },
      svg("title", {}, "超过办结期限")));
  }
  for (const p of pauses) {
    parts.push(svg("rect", { class: "pause", x: x(p.from), y: Y - 8, width: Math.max(2, x(p.to) - x(p.from)), height: 16 },
      svg("title", {}, "暂停：" + p.kinds.map((k) => PAUSE_KINDS[k] || k).join("、"))));
  }
  parts.push(svg("line", { class: "axis", x1: L, x2: x(hi), y1: Y, y2: Y }));
  if (far) {
    parts.push(svg("line", { class: "mark now", x1: x(hi), x2: W - 8, y1: Y, y2: Y }));
    parts.push(svg("text", { x: W - 4, y: Y - 6, "text-anchor": "end" }, "当前 " + fmtTime(new Date(nowMs).toISOString())));
  } else {
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
  reason: (v) => "原因：" + v, result: (v) => "结果：" + v, stage: (v) => "环节：" + v,
  procedure: (v) => "程序：" + v, extra_days: (v) => `延长 ${v} 天`, limit_days: (v) => `时限 ${v} 天`,
  amount_fen: (v) => `金额 ${(v / 100).toFixed(2)} 元`, score: (v) => `评分 ${v}`, category: (v) => "类别：" + v,
  to_department: (v) => "转至 " + names.dept(v), channel: (v) => "渠道：" + v,
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
