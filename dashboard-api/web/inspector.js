// 督办台: the live queue of active alerts by level and age, one row per case (subject) and rule
// with lower levels folded under the higher one; a summary until an alert is chosen; an alert's
// detail with its deadline evidence, case history and audit trail; the actions 签收 / 督办 /
// 回告 / 办结 / 不予处理. Ages and 督办 reply deadlines count down and change colour.
import {
  ACTIVE, ACTIONS, api, chip, connIndicator, dataClock, el, fill, fmtAge, fmtTime, LEVEL_ORDER, LEVELS, Live,
  loadDirectory, names, prettyMessage, requireRole, session, showError, STATUS, statusChip, topbar,
} from "/ui/assets/common.js";
import { evidenceFields } from "/ui/assets/evidence.js";
import { EVENT_KINDS, eventDetail, evidenceTimeline } from "/ui/assets/timeline.js";

requireRole(["inspector", "admin"]);
await loadDirectory();
const canAct = session().user.role === "inspector";

const alerts = new Map();
let selected = new URLSearchParams(location.search).get("alert");
const filter = { level: "", status: "", sort: "level" };

const conn = connIndicator();
topbar("/ui/inspector", conn);

// ---- filters ----
function toggle(group, value, label) {
  return el("button", {
    type: "button", "data-group": group, "data-value": value, "aria-pressed": String(filter[group] === value),
    onclick: () => { filter[group] = value; renderFilters(); renderQueue(); },
  }, label);
}
const countEl = el("span", { class: "count", id: "queue-count" });
function renderFilters() {
  document.getElementById("filters").replaceChildren(
    toggle("level", "", "全部等级"), toggle("level", "red", "红牌"), toggle("level", "yellow", "黄牌"), toggle("level", "warning", "预警"),
    el("span", { class: "muted" }, "｜"),
    toggle("status", "", "全部状态"), toggle("status", "open", "待签收"), toggle("status", "acknowledged", "已签收"), toggle("status", "supervising", "督办中"),
    el("span", { class: "muted" }, "｜"),
    toggle("sort", "level", "按等级"), toggle("sort", "age", "按时长"),
    countEl);
}
renderFilters();

// ---- queue ----
function subjectOf(a) {
  if (a.case_id) return a.case_id;
  if (a.staff_id) return names.staff(a.staff_id);
  if (a.window_id) return names.window(a.window_id);
  const s = a.subject || {};
  // A feed's alert (source.*): the feed, and since when (its local time, as the page shows
  // times) or which day — not the raw timestamp.
  if (s.source) {
    const when = s.since ? "自 " + String(s.since).slice(5, 16).replace("T", " ") + " 起"
      : s.date ? String(s.date).slice(5) : "";
    return ("数据源 " + s.source + " " + when).trim();
  }
  if (s.event_id) return "事件 " + s.event_id;
  return Object.values(s).join(" ") || "—";
}

/// SPEC §7 "superseded": the alerts of one rule and subject (a case, a window…) at several
/// levels are one row, the highest level on top and the lower ones folded under it.
function groups(list) {
  const byKey = new Map();
  for (const a of list) {
    const key = a.rule + "|" + a.region + "|" + JSON.stringify(a.subject || {});
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(a);
  }
  return [...byKey.values()].map((g) => g.sort((a, b) => LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level]
    || b.fired_at.localeCompare(a.fired_at)));
}

/// How long an alert has stood (data time): amber after a day, red after three.
function ageCell(a, now) {
  const s = (now - Date.parse(a.fired_at)) / 1000;
  return el("td", { class: "num age " + (s > 3 * 86400 ? "over" : s > 86400 ? "soon" : "ok") }, fmtAge(s));
}

/// The 督办 reply deadline as a countdown (wall clock, as the deadline was set): green, amber
/// in its last day, red once passed.
function deadlineText(a) {
  if (!a.reply_deadline) return null;
  if (a.replied_at) return { cls: "ok", text: "已回告" };
  const left = (Date.parse(a.reply_deadline) - Date.now()) / 1000;
  if (left <= 0) return { cls: "over", text: "已逾期 " + fmtAge(-left) };
  return { cls: left < 86400 ? "soon" : "ok", text: "剩 " + fmtAge(left) };
}
function deadlineCell(a) {
  const d = deadlineText(a);
  return el("td", { class: "num countdown " + (d ? d.cls : ""), "data-countdown": d ? d.cls : null }, d ? d.text : "—");
}

const unfolded = new Set();
function renderQueue() {
  const now = dataClock.now();
  const list = groups([...alerts.values()])
    .filter((g) => (!filter.level || g[0].level === filter.level) && (!filter.status || g[0].status === filter.status))
    .sort(([a], [b]) => filter.sort === "age"
      ? a.fired_at.localeCompare(b.fired_at)
      : LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level] || a.fired_at.localeCompare(b.fired_at));
  const row = (a, lower, key) => el("tr", {
    class: "clickable" + (a.alert_id === selected ? " selected" : "") + (lower ? " folded" : ""),
    "data-alert": a.alert_id, "data-status": a.status, "data-level": a.level, onclick: () => select(a.alert_id),
  },
  el("td", {}, lower ? el("span", { class: "fold-mark" }, "└ ") : null, chip(a.level)),
  el("td", {}, names.rule(a.rule), key ? el("button", {
    type: "button", class: "fold", "data-fold": key, title: "同一对象已被取代的较低等级告警",
    onclick: (e) => { e.stopPropagation(); unfolded.has(key) ? unfolded.delete(key) : unfolded.add(key); renderQueue(); },
    "aria-label": (unfolded.has(key) ? "收起" : "展开") + "较低等级 " + key.split("|")[0] + " 条",
  }, (unfolded.has(key) ? "−" : "+") + key.split("|")[0]) : null),
  el("td", { class: "subject" }, subjectOf(a)),
  el("td", {}, names.dept(a.department)),
  el("td", { class: "num" }, fmtTime(a.fired_at)),
  ageCell(a, now),
  deadlineCell(a),
  el("td", {}, statusChip(a.status)));
  const rows = list.flatMap((g) => {
    const key = g.length > 1 ? `${g.length - 1}|${g[0].alert_id}` : null;
    const open = key && unfolded.has(key);
    return [row(g[0], false, key), ...(open ? g.slice(1).map((a) => row(a, true, null)) : [])];
  });
  document.getElementById("queue").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, "没有符合条件的告警"))]));
  const red = [...alerts.values()].filter((a) => a.level === "red").length;
  countEl.textContent = `显示 ${list.length} 项 / 共 ${alerts.size} 条，红牌 ${red} 条`;
  document.getElementById("queue-note").textContent = dataClock.behind()
    ? "（数据时间 " + fmtTime(new Date(now).toISOString(), true) + "）" : "";
  if (!selected) renderSummary();
}

/// The right half before an alert is chosen: what the queue holds, what is urgent.
function renderSummary() {
  const box = document.getElementById("detail");
  const all = [...alerts.values()];
  const count = (f) => all.filter(f).length;
  const now = dataClock.now();
  const tile = (label, n, cls) => el("div", { class: "sum-tile " + (cls || "") }, el("b", {}, String(n)), el("span", {}, label));
  const due = all.filter((a) => a.status === "supervising" && a.reply_deadline && !a.replied_at)
    .sort((a, b) => a.reply_deadline.localeCompare(b.reply_deadline)).slice(0, 8);
  const waiting = all.filter((a) => a.status === "open").sort((a, b) => a.fired_at.localeCompare(b.fired_at)).slice(0, 8);
  const pick = (a) => el("li", { class: "clickable", "data-alert": a.alert_id, onclick: () => select(a.alert_id) },
    chip(a.level), el("span", {}, names.rule(a.rule)), el("span", { class: "subject" }, subjectOf(a)),
    el("span", { class: "muted" }, names.dept(a.department)));
  fill(box,
    el("h2", { id: "summary-title" }, "督办概况"),
    el("div", { class: "sum-tiles", id: "summary" },
      ["red", "yellow", "warning"].map((l) => tile(LEVELS[l], count((a) => a.level === l), l)),
      ["open", "acknowledged", "supervising"].map((s) => tile(STATUS[s], count((a) => a.status === s))),
      tile("超过 3 天未处理", count((a) => a.status === "open" && now - Date.parse(a.fired_at) > 3 * 86400e3), "over")),
    el("h3", {}, "督办回复期限"),
    due.length ? el("ul", { class: "sum-list" }, due.map((a) => {
      const d = deadlineText(a);
      return el("li", { class: "clickable", "data-alert": a.alert_id, onclick: () => select(a.alert_id) },
        el("span", { class: "countdown " + d.cls }, d.text), chip(a.level), el("span", {}, names.rule(a.rule)),
        el("span", { class: "subject" }, subjectOf(a)));
    })) : el("p", { class: "muted" }, "没有等待回告的督办"),
    el("h3", {}, "等待签收最久"),
    waiting.length ? el("ul", { class: "sum-list" }, waiting.map(pick)) : el("p", { class: "muted" }, "没有待签收的告警"),
    el("p", { class: "muted" }, "在左侧选择一条告警，查看时限依据、办件过程和处理记录。"));
}

// ---- detail ----
let detailSeq = 0;
async function select(id) {
  selected = id;
  history.replaceState(null, "", "?alert=" + encodeURIComponent(id));
  renderQueue();
  await showDetail();
}

async function showDetail() {
  const box = document.getElementById("detail");
  if (!selected) return;
  const seq = ++detailSeq;
  let d;
  try {
    d = await api("/api/v1/alerts/" + encodeURIComponent(selected));
  } catch (e) {
    if (seq === detailSeq) showError(box, e);
    return;
  }
  if (seq !== detailSeq) return;
  const a = d.alert;
  const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v || "—")];
  const buttons = [
    ["acknowledge", "签收", ["open"], "primary"],
    ["supervise", "督办", ["open", "acknowledged"], ""],
    ["reply", "回告", ["supervising"], ""],
    ["resolve", "办结", ["open", "acknowledged", "supervising"], ""],
    ["dismiss", "不予处理", ["open", "acknowledged", "supervising"], "danger"],
  ].map(([action, label, states, cls]) => el("button", {
    type: "button", class: cls, "data-action": action,
    disabled: !canAct || !states.includes(a.status),
    title: canAct ? null : "只有监察员可以处理告警",
    onclick: () => openDialog(action, a),
  }, label));
  const isCase = a.rule.startsWith("case.");
  const timeline = isCase ? evidenceTimeline(d.evidence, dataClock.now()) : null;
  const facts = evidenceFields(d.evidence);
  const countdown = deadlineText(a);
  const age = (dataClock.now() - Date.parse(a.fired_at)) / 1000;
  fill(box,
    el("h2", { id: "detail-title" }, chip(a.level), names.rule(a.rule), statusChip(a.status),
      a.escalated ? el("span", { class: "chip red" }, "督办逾期升级") : null),
    el("div", { class: "message" }, prettyMessage(a.message)),
    el("dl", { class: "facts" },
      fact("办件", a.case_id), fact("事项", a.item_code ? names.item(a.item_code) : null),
      fact("部门", names.dept(a.department)), fact("中心", names.center(a.center_id)),
      fact("窗口", a.window_id ? `${names.window(a.window_id)}（${a.window_id}）` : null),
      fact("人员", a.staff_id ? names.staff(a.staff_id) : null),
      fact("触发时间", fmtTime(a.fired_at, true)),
      fact("已持续", ACTIVE.has(a.status)
        ? el("span", { class: "age " + (age > 3 * 86400 ? "over" : age > 86400 ? "soon" : "ok") }, fmtAge(age)) : null),
      fact("回复期限", a.reply_deadline ? [fmtTime(a.reply_deadline, true) + " ",
        el("span", { class: "countdown " + countdown.cls, id: "detail-countdown" }, countdown.text)] : null)),
    el("div", { class: "actions" }, buttons),
    el("h3", {}, isCase ? "时限依据" : "告警依据"),
    timeline ? el("div", { class: "timeline", id: "evidence-timeline" }, timeline) : null,
    facts,
    el("h3", {}, "处理记录"),
    d.actions.length
      ? el("ol", { class: "trail", id: "trail" }, d.actions.map((x) => el("li", { "data-action": x.action },
        el("span", { class: "when" }, fmtTime(x.at, true)),
        el("strong", {}, ACTIONS[x.action] || "处理"),
        el("span", { class: "actor" }, (x.actor_name || x.actor) + (x.actor_unit ? `（${x.actor_unit}）` : "")),
        el("span", {}, x.note),
        x.reply_deadline ? el("span", { class: "muted" }, "回复期限 " + fmtTime(x.reply_deadline, true)) : null)))
      : el("p", { class: "muted", id: "trail" }, "尚无处理记录"),
    a.case_id ? el("h3", {}, "办件过程") : null,
    d.timeline_error ? el("div", { class: "error" }, "办件过程暂时无法读取：" + d.timeline_error) : null,
    a.case_id && d.timeline.length ? el("ol", { class: "events" }, d.timeline.map((e) => el("li", {},
      el("span", { class: "when" }, fmtTime(e.occurred_at, true)),
      el("strong", {}, EVENT_KINDS[e.kind] || "事件"),
      el("span", { class: "muted" }, eventDetail(e))))) : null);
}

// ---- actions ----
const dialog = document.getElementById("act-dialog");
const form = document.getElementById("act-form");
const HELP = {
  acknowledge: ["签收告警", "确认已看到并着手处理。", "备注（可选）"],
  supervise: ["发起督办", "向责任单位发出督办通知，并设定回复期限；期限内未回告将自动升级为红牌。", "督办意见"],
  reply: ["记录回告", "记录责任单位的回复。", "回告内容"],
  resolve: ["办结", "告警已处理完毕，请写明处理结果。", "处理结果"],
  dismiss: ["不予处理", "经核实不属于违规，请写明不予处理的理由。", "理由"],
};
let pendingAction = null;

function openDialog(action, a) {
  pendingAction = { action, alert: a };
  const [title, help, label] = HELP[action];
  document.getElementById("act-title").textContent = `${title} · ${names.rule(a.rule)}`;
  document.getElementById("act-help").textContent = help;
  document.getElementById("act-note-label").textContent = label;
  const note = document.getElementById("act-note");
  note.value = "";
  note.required = action !== "acknowledge";
  const deadlineRow = document.getElementById("act-deadline-row");
  const deadline = document.getElementById("act-deadline");
  deadlineRow.classList.toggle("hidden", action !== "supervise");
  deadline.required = action === "supervise";
  if (action === "supervise") {
    // Default: three days from now at 17:00 China time.
    const d = new Date(Date.now() + 3 * 86400e3 + 8 * 3600e3);
    deadline.value = d.toISOString().slice(0, 10) + "T17:00";
  }
  document.getElementById("act-error").classList.add("hidden");
  dialog.showModal();
  note.focus();
}

document.getElementById("act-cancel").addEventListener("click", () => dialog.close());
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const { action, alert } = pendingAction;
  const body = { action, note: document.getElementById("act-note").value.trim() };
  if (action === "supervise") body.reply_deadline = document.getElementById("act-deadline").value + ":00+08:00";
  const err = document.getElementById("act-error");
  const submit = document.getElementById("act-submit");
  submit.disabled = true;
  try {
    const r = await api(`/api/v1/alerts/${encodeURIComponent(alert.alert_id)}/actions`, { method: "POST", body });
    upsert(r.alert);
    dialog.close();
    await showDetail();
  } catch (e) {
    err.textContent = e.message;
    err.classList.remove("hidden");
  } finally {
    submit.disabled = false;
  }
});

// ---- live ----
function upsert(a) {
  dataClock.observe(a.fired_at);
  if (ACTIVE.has(a.status)) alerts.set(a.alert_id, a);
  else alerts.delete(a.alert_id);
}

let detailTimer = null;
const live = new Live({
  state: (s) => conn.set(s),
  snapshot: (msg) => {
    alerts.clear();
    for (const w of msg.windows) dataClock.observe(w.updated_at);
    for (const a of msg.alerts) upsert(a);
    renderQueue();
    if (selected) showDetail();
  },
  alert: (a) => {
    upsert(a);
    renderQueue();
    if (a.alert_id === selected && !detailTimer) {
      detailTimer = setTimeout(() => { detailTimer = null; showDetail(); }, 200);
    }
  },
  window: (w) => dataClock.observe(w.updated_at),
});
live.connect({});
setInterval(renderQueue, 15000);
if (selected) showDetail();
else renderSummary();
// Links in the evidence to other alerts (a ladder step's cause, a folded lower level).
document.getElementById("detail").addEventListener("click", (ev) => {
  const link = ev.target.closest("a[data-alert-link]");
  if (!link) return;
  ev.preventDefault();
  select(link.getAttribute("data-alert-link"));
});
