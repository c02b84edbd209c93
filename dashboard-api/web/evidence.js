// An alert's evidence as labelled Chinese fields: times as local dates, amounts in 元, channels,
// results, stages and other codes in Chinese, staff and windows by name, the alerts it names as
// links. What has no label here is not guessed at: it stays in the collapsed 原始依据 (JSON), so
// an inspector can still check everything by hand and nobody reads a field name as text.
import { el, fmtTime, LEVELS, names } from "/ui/assets/common.js";

/// The Chinese of the wire codes (SPEC §3, §6): what events and evidence carry.
export const ZH = {
  channel: { hall: "窗口", online: "网上", self_service: "自助终端", mobile: "移动端", office: "部门办公室" },
  result: {
    agree: "同意", disagree: "不同意", return: "退回", approved: "准予", denied: "不予许可",
    returned: "退回", voided: "作废", forwarded: "转报",
  },
  stage: { undertake: "承办", review: "审核", approve: "批准", accept: "受理" },
  case_type: { instant: "即办件", promised: "承诺件", reported: "上报件", joint: "联办件" },
  unit: {
    working: "个工作日", natural: "个自然日", working_hours: "个工作小时", working_minutes: "个工作分钟", months: "个月",
  },
  procedure: {
    hearing: "听证", tender: "招标", auction: "拍卖", inspection: "检验", testing: "检测", quarantine: "检疫",
    appraisal: "鉴定", expert_review: "专家评审", publicity: "公示", other: "其他",
  },
  category: { attitude: "服务态度", efficiency: "办事效率", fee: "收费", integrity: "廉洁", other: "其他" },
  start_reason: { accepted: "受理", deemed_accepted: "逾期未决定，视为收到申请即受理" },
  red_basis: { legal: "超过法定时限", supervision: "督办期满仍未办结" },
  pause: { suspension: "挂起", supplement: "补正", special: "特别程序" },
  state: { open: "尚未办结", completed: "已办结", rejected: "不予受理" },
  finding: {
    reported_after_deadline: "暂停在不计它的承诺期限届满后才上报",
    reported_with_late_completion: "暂停与超期的办结一同上报",
    same_second: "两个以上审批环节的时间精确到秒相同",
    just_before_completion_reported_after: "审批环节均在办结前片刻，且在办结之后才上报",
  },
  explanation: {
    source_counts_official_holiday: "来源系统把法定节假日当作工作日",
    source_counts_rest_day: "来源系统把休息日当作工作日",
    source_skips_adjusted_working_day: "来源系统未把调休上班日计为工作日",
    source_ends_on_rest_day: "来源系统未把落在休息日的期限末日顺延",
    source_start_differs: "来源系统的起算日或时钟不同",
  },
  kind: {
    "case.submitted": "申请", "case.accepted": "受理", "case.rejected": "不予受理",
    "case.supplement_requested": "补正告知", "case.supplement_received": "补正受理",
    "case.stage": "审批环节", "case.transferred": "转办", "case.special_started": "特别程序开始",
    "case.special_ended": "特别程序结束", "case.suspended": "挂起", "case.resumed": "解挂",
    "case.extended": "延长审批", "case.completed": "办结", "case.delivered": "出件",
    "case.archived": "归档", "fee.charged": "收费", "complaint.filed": "投诉",
    "complaint.resolved": "投诉办结", "evaluation.submitted": "好差评", "evaluation.rectified": "差评整改",
    "staff.signed_in": "签到", "staff.signed_out": "签退", "window.opened": "开窗",
    "window.paused": "暂停", "window.closed": "关窗", "queue.ticket_issued": "取号", "queue.ticket_called": "叫号",
    "event.withdrawn": "撤回",
  },
};

const zh = (table, v) => ZH[table][v] || "（未知）";
const ISO = /^\d{4}-\d{2}-\d{2}T/;
const time = (v) => (typeof v === "string" && ISO.test(v) ? fmtTime(v, true) : v);
const yuan = (fen) => (Number(fen) / 100).toFixed(2) + " 元";
const limit = (l) => (l && typeof l === "object" ? `${l.days} ${zh("unit", l.unit)}` : null);
const yesNo = (b) => (b ? "是" : "否");
// Pauses add days, or minutes of office time to a limit in working hours/minutes (RULES.md).
const pauseAmount = (v, unit) => (unit === "working_minutes" ? v + " 分钟（工作时间）" : v + " 天");
const staff = (id) => (id ? names.staff(id) : null);
const windowName = (id) => (id ? names.window(id) : null);

/// A link to another alert of the queue (the page reads `?alert=`).
function alertLink(a) {
  const text = [LEVELS[a.level], a.rule ? names.rule(a.rule) : null, a.case_id ? "办件 " + a.case_id : null,
    a.fired_at ? fmtTime(a.fired_at) : null].filter(Boolean).join(" ");
  return el("a", { href: "?alert=" + encodeURIComponent(a.alert_id), "data-alert-link": a.alert_id }, text || "相关告警");
}

/// An event the evidence names: "张三 签退 11-20 16:25".
function eventRef(e) {
  if (!e || typeof e !== "object") return null;
  return [staff(e.staff_id), ZH.kind[e.kind] || "事件", time(e.occurred_at)].filter(Boolean).join(" ");
}

function list(items) {
  return items.length ? el("ul", { class: "ev-list" }, items.map((x) => el("li", {}, x))) : "无";
}

/// How each known key is labelled and shown; `null` from a renderer hides the row.
const FIELDS = {
  subject_state: ["办件现状", (s) => {
    if (!s || s.status === "open") return "尚未办结";
    const late = s.overdue_working_days;
    return [zh("state", s.status), fmtTime(s.closed_at, true), s.result ? zh("result", s.result) : null,
      late === 0 ? "在承诺时限内" : late > 0 ? `超期 ${late} 个工作日` : null].filter(Boolean).join("，");
  }],
  cleared_by: ["解除依据", (e) => `${zh("kind", e.kind)}于 ${time(e.occurred_at)}，未超过承诺时限，系统自动解除`],
  retracted_by: ["撤销依据", (e) => `后到事件表明${zh("kind", e.kind)}已于 ${time(e.occurred_at)} 发生`],
  supersedes: ["已合并的较低等级", (xs) => list(xs.map(alertLink))],
  cause: ["起因", (c) => (c.alert_id ? alertLink(c) : eventRef(c))],
  start: ["起算日", (v) => v],
  start_reason: ["起算依据", (v) => zh("start_reason", v)],
  submitted_at: ["申请时间", time],
  accepted_at: ["受理时间", time],
  case_type: ["办件类型", (v) => zh("case_type", v)],
  limit: ["承诺时限", limit],
  extension_days: ["延长天数", (v) => (v ? v + " 天" : null)],
  pause_days: ["暂停天数", (v, ev) => (v ? pauseAmount(v, ev.pause_unit) : null)],
  pauses: ["暂停", (ps) => (ps.length ? list(ps.map((p) =>
    `${time(p.from)} 至 ${time(p.to)}，${(p.kinds || []).map((k) => zh("pause", k)).join("、")}，计 ${p.days} ${zh("unit", p.unit)}`)) : null)],
  extensions: ["延长审批", (xs) => (xs.length ? list(xs.map((x) =>
    `${time(x.at)} 申请延长 ${x.extra_days} 天${x.applied ? "" : "（超过期限后申请，不予顺延）"}`)) : null)],
  deadline_date: ["办结期限", (v) => v],
  deadline: ["期限时刻", time],
  warning_date: ["预警日", (v) => v],
  supervision_date: ["督办期限", (v) => v],
  supervision_deadline: null,
  legal_limit: ["法定时限", limit],
  legal_deadline_date: ["法定期限", (v) => v],
  legal_deadline: null,
  legal_pause_days: ["法定时限暂停", (v, ev) => (v ? pauseAmount(v, ev.legal_pause_unit) : null)],
  red_basis: ["红牌依据", (v) => zh("red_basis", v)],
  provisional_years: ["暂定年份", (ys) => (ys.length ? ys.map((y) => y + " 年").join("、") + "（节假日安排未发布，按周末推算）" : null)],
  stage: ["环节", (v) => zh("stage", v)],
  stage_started_at: ["环节开始", time],
  special: ["特别程序序号", (v) => "第 " + v + " 次"],
  procedure: ["特别程序", (v) => zh("procedure", v)],
  started_at: ["开始时间", time],
  period: ["受理期次", (v) => "第 " + v + " 期"],
  period_started_at: ["期次开始", time],
  completed_at: ["办结时间", time],
  closed_at: ["结束时间", time],
  rejected_at: ["不予受理时间", time],
  reason: ["理由", (v) => v || "未说明"],
  stages: ["审批环节", (xs) => (xs.length ? list(xs.map((s) => zh("stage", s.stage || s))) : "无审批环节记录")],
  grace_minutes: ["等待受理记录", (v) => v + " 分钟"],
  acceptance: ["受理情况", (a) => (a ? `${time(a.at)} 经${zh("channel", a.channel)}受理` : "无受理记录")],
  receipt_no: ["票据号", (v) => v],
  payer_id: ["缴款人", (v) => v],
  amount_fen: ["收费金额", yuan],
  fee_fen: ["收费标准", (v) => (v === null || v === undefined ? "未知" : yuan(v))],
  charged_at: ["开票时间", time],
  fee_match_working_days: ["对应受理期限", (v) => v + " 个工作日"],
  channel: ["受理渠道", (v) => zh("channel", v)],
  allowed_channels: ["允许渠道", (xs) => xs.map((c) => zh("channel", c)).join("、")],
  window_in_hall: ["进驻大厅窗口", yesNo],
  item_in_hall: ["应进厅事项", yesNo],
  performed_at: ["办理时间", time],
  staff_in_hall: ["人员在厅", yesNo],
  staff_department: ["人员所属部门", (v) => names.dept(v)],
  cases: ["涉及办件", (xs) => list(xs.map((c) => `办件 ${c.case_id}：${time(c.accepted_at)} 受理，${time(c.completed_at)} 办结，间隔 ${c.seconds} 秒`))],
  window_minutes: ["统计时段", (v) => v + " 分钟"],
  min_cases: ["件数阈值", (v) => v + " 件"],
  max_case_seconds: ["单件最短用时", (v) => v + " 秒"],
  kind: ["事件", (v) => zh("kind", v)],
  occurred_at: ["发生时间", time],
  reported_at: ["上报时间", time],
  delay_seconds: ["迟报时长", (v) => (v / 3600).toFixed(1) + " 小时"],
  limit_hours: ["上报时限", (v) => v + " 小时"],
  since: ["起始时间", time],
  office_hours: ["办公时间", (v) => String(v).replace(/,/g, "、")],
  unstaffed_minutes: ["空岗时限", (v) => v + " 分钟"],
  ticket_no: ["号票", (v) => v],
  issued_at: ["取号时间", time],
  called_at: ["叫号时间", time],
  max_wait_minutes: ["等候时限", (v) => v + " 分钟"],
  year: ["年度", (v) => v + " 年"],
  count: ["累计次数", (v) => v + " 次"],
  action: ["处理方式", (v) => v],
  complaint_id: ["投诉编号", (v) => v],
  evaluation_id: ["评价编号", (v) => v],
  category: ["投诉类别", (v) => zh("category", v)],
  filed_at: ["投诉时间", time],
  resolved_at: ["办结时间", time],
  rated_at: ["评价时间", time],
  score: ["评分", (v) => v + " 分"],
  substantiated_complaints: ["有效投诉", (xs) => (Array.isArray(xs) ? list(xs.map((x) => eventRef(x) || x.complaint_id || "投诉")) : xs + " 次")],
  complaints_and_bad_evaluations: ["投诉与差评", (xs) => (Array.isArray(xs) ? list(xs.map((x) => eventRef(x) || "记录")) : xs + " 次")],
  sample: ["样本数", (v) => v + " 条"],
  satisfied: ["满意条数", (v) => v + " 条"],
  rate: ["满意率", (v) => (v * 100).toFixed(1) + "%"],
  floor: ["满意率下限", (v) => (v * 100).toFixed(1) + "%"],
  window_days: ["统计天数", (v) => v + " 天"],
  pause: ["暂停", (p) => `${(p.kind || "").split("+").map((k) => zh("pause", k)).join("、")}，${time(p.from)} 起${p.to ? " 至 " + time(p.to) : "（未结束）"}，${time(p.reported_at)} 上报`],
  deadline_without_pause: ["不计该暂停的期限", (d) => `${d.deadline_date}（${time(d.deadline)} 届满）`],
  deadline_with_pause: ["计入暂停后的期限", (d) => `${d.deadline_date}（${time(d.deadline)} 届满）`],
  completion_reported_at: ["办结上报时间", time],
  last_stage_reported_at: ["审批环节最后上报", time],
  batch_window_minutes: ["同报认定时限", (v) => v + " 分钟"],
  fabricated_stage_seconds: ["补录认定时限", (v) => "办结前 " + v + " 秒"],
  finding: ["认定", (v) => zh("finding", v)],
  jiancha: ["按法定日历", (j) => `${j.deadline_date}${j.counted_days && j.counted_days.length ? "（计 " + j.counted_days.join("、") + "）" : ""}`],
  source: ["来源系统", (v) => (typeof v === "object" ? `计算期限 ${v.deadline_date}` : v)],
  difference_working_days: ["相差", (v) => (v < 0 ? `早 ${-v} 个工作日` : `晚 ${v} 个工作日`)],
  parts_on: ["分歧日", (v) => v],
  explanation: ["分歧原因", (v) => zh("explanation", v)],
  matched: ["占位账号规则", (v) => v],
  date: ["日期", (v) => v],
  last_report_at: ["最后一次上报", time],
  source_silence_minutes: ["静默时限", (v) => "办公时间 " + v + " 分钟"],
  case_events: ["当日办件过程数据", (v) => v + " 条"],
  reported_after_completion: ["办结上报后才上报", (v) => v + " 条"],
  share: ["占比", (v) => (v * 100).toFixed(1) + "%"],
  not_live_share: ["认定阈值", (v) => "超过 " + (v * 100).toFixed(0) + "%"],
  item_code: ["事项", (v) => names.item(v)],
  case_id: ["办件", (v) => v],
  window_id: ["窗口", windowName],
  staff_id: ["人员", staff],
  department: ["部门", (v) => names.dept(v)],
  event_id: ["事件编号", (v) => v],
};

/// The evidence as labelled fields (a `dl`), plus the raw JSON folded away. `skip` names keys
/// another part of the page already shows (the timeline draws the case clock's dates).
export function evidenceFields(ev, skip = []) {
  if (!ev || typeof ev !== "object" || !Object.keys(ev).length) return null;
  const rows = [];
  // In the order of FIELDS: the case's state and what ended the alert first, then the clock.
  for (const [key, field] of Object.entries(FIELDS)) {
    const value = ev[key];
    if (!field || skip.includes(key) || value === null || value === undefined || value === "") continue;
    let shown;
    try {
      shown = field[1](value, ev);
    } catch (_) {
      shown = null; // an unexpected shape: left to the raw JSON below
    }
    if (shown === null || shown === undefined || shown === "") continue;
    rows.push(el("dt", {}, field[0]), el("dd", { "data-key": key }, shown));
  }
  return [
    rows.length ? el("dl", { class: "facts evidence", id: "evidence-fields" }, rows) : null,
    el("details", { class: "raw" }, el("summary", {}, "原始依据（JSON）"),
      el("pre", {}, JSON.stringify(ev, null, 2))),
  ];
}
