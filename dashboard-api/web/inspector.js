// 督办台: the live queue of active alerts by level and age; an alert's detail with its deadline
// evidence, case history and audit trail; the actions 签收 / 督办 / 回告 / 办结 / 驳回.
import {
  ACTIVE, ACTIONS, api, chip, connIndicator, dataClock, el, fill, fmtAge, fmtTime, LEVEL_ORDER, Live,
  loadDirectory, names, prettyMessage, requireRole, session, showError, statusChip, topbar,
} from "/ui/assets/common.js";
import { EVENT_KINDS, eventDetail, evidenceFacts, evidenceList, evidenceTimeline } from "/ui/assets/timeline.js";

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
  if (a.case_id) return "办件 " + a.case_id;
  if (a.staff_id) return names.staff(a.staff_id);
  if (a.window_id) return names.window(a.window_id);
  return a.subject && Object.values(a.subject).join(" ") || "—";
}

function renderQueue() {
  const now = dataClock.now();
  const list = [...alerts.values()]
    .filter((a) => (!filter.level || a.level === filter.level) && (!filter.status || a.status === filter.status))
    .sort((a, b) => filter.sort === "age"
      ? a.fired_at.localeCompare(b.fired_at)
      : LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level] || a.fired_at.localeCompare(b.fired_at));
  const rows = list.map((a) => el("tr", {
    class: "clickable" + (a.alert_id === selected ? " selected" : ""), "data-alert": a.alert_id,
    "data-status": a.status, onclick: () => select(a.alert_id),
  },
  el("td", {}, chip(a.level)),
  el("td", {}, names.rule(a.rule)),
  el("td", {}, subjectOf(a)),
  el("td", {}, names.dept(a.department)),
  el("td", { class: "num" }, fmtTime(a.fired_at)),
  el("td", { class: "num" }, fmtAge((now - Date.parse(a.fired_at)) / 1000)),
  el("td", {}, statusChip(a.status))));
  document.getElementById("queue").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "没有符合条件的告警"))]));
  const red = [...alerts.values()].filter((a) => a.level === "red").length;
  countEl.textContent = `显示 ${list.length} / 共 ${alerts.size} 条，红牌 ${red} 条`;
  document.getElementById("queue-note").textContent = dataClock.behind()
    ? "（数据时间 " + fmtTime(new Date(now).toISOString(), true) + "）" : "";
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
    ["dismiss", "驳回", ["open", "acknowledged", "supervising"], "danger"],
  ].map(([action, label, states, cls]) => el("button", {
    type: "button", class: cls, "data-action": action,
    disabled: !canAct || !states.includes(a.status),
    title: canAct ? null : "只有监察员可以处理告警",
    onclick: () => openDialog(action, a),
  }, label));
  const isCase = a.rule.startsWith("case.");
  const timeline = isCase ? evidenceTimeline(d.evidence, dataClock.now()) : null;
  const facts = isCase ? evidenceFacts(d.evidence) : evidenceList(d.evidence);
  fill(box,
    el("h2", { id: "detail-title" }, chip(a.level), names.rule(a.rule), statusChip(a.status),
      a.escalated ? el("span", { class: "chip red" }, "督办逾期升级") : null),
    el("div", { class: "message" }, prettyMessage(a.message)),
    el("dl", { class: "facts" },
      fact("办件", a.case_id), fact("事项", a.item_code ? names.item(a.item_code) : null),
      fact("部门", names.dept(a.department)), fact("中心", names.center(a.center_id)),
      fact("窗口", a.window_id ? `${names.window(a.window_id)}（${a.window_id}）` : null),
      fact("人员", a.staff_id ? `${names.staff(a.staff_id)}（${a.staff_id}）` : null),
      fact("触发时间", fmtTime(a.fired_at, true)),
      fact("回复期限", a.reply_deadline ? fmtTime(a.reply_deadline, true) + (a.replied_at ? "（已回告）" : "") : null)),
    el("div", { class: "actions" }, buttons),
    timeline || facts ? el("h3", {}, isCase ? "时限依据" : "告警依据") : null,
    timeline ? el("div", { class: "timeline", id: "evidence-timeline" }, timeline) : null,
    facts,
    el("h3", {}, "处理记录"),
    d.actions.length
      ? el("ol", { class: "trail", id: "trail" }, d.actions.map((x) => el("li", { "data-action": x.action },
        el("span", { class: "when" }, fmtTime(x.at, true)),
        el("strong", {}, ACTIONS[x.action] || x.action),
        el("span", { class: "actor" }, x.actor), el("span", {}, x.note),
        x.reply_deadline ? el("span", { class: "muted" }, "回复期限 " + fmtTime(x.reply_deadline, true)) : null)))
      : el("p", { class: "muted", id: "trail" }, "尚无处理记录"),
    a.case_id ? el("h3", {}, "办件过程") : null,
    d.timeline_error ? el("div", { class: "error" }, "办件过程暂时无法读取：" + d.timeline_error) : null,
    a.case_id && d.timeline.length ? el("ol", { class: "events" }, d.timeline.map((e) => el("li", {},
      el("span", { class: "when" }, fmtTime(e.occurred_at, true)),
      el("strong", {}, EVENT_KINDS[e.kind] || e.kind),
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
  dismiss: ["驳回", "经核实不属于违规，请写明理由。", "驳回理由"],
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
setInterval(renderQueue, 30000);
if (selected) showDetail();
