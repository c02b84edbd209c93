// 查询与绩效: stored alerts of any period with filters, pages and CSV export; violations per
// month and per department; the 绩效 table. Everything is read from the store.
import {
  api, chip, dataClock, el, fmtTime, LEVELS, loadDirectory, localDay, names, pct, prettyMessage, requireRole,
  showError, statusChip, topbar,
} from "/ui/assets/common.js";
import { columns, rows as barRows } from "/ui/assets/charts.js";
import { EVENT_KINDS, eventDetail } from "/ui/assets/timeline.js";

requireRole(["leader", "inspector", "auditor", "admin"]);
const dir = await loadDirectory();
topbar("/ui/auditor");

const form = document.getElementById("query");
const PAGE = 50;

// ---- the form ----
function options(select, all, list) {
  select.replaceChildren(el("option", { value: "" }, all), ...list.map(([v, label]) => el("option", { value: v }, label)));
}
const regions = [...new Map(dir.centers.map((c) => [c.region, c])).values()];
options(form.region, "全部", regions.map((c) => [c.region, `${c.region} ${c.name}`]));
options(form.center, "全部", dir.centers.map((c) => [c.center_id, c.name]));
const depts = [...new Set(dir.windows.map((w) => w.department))].sort();
options(form.department, "全部", depts.map((d) => [d, names.dept(d)]));
function windowOptions() {
  const ws = dir.windows.filter((w) => (!form.department.value || w.department === form.department.value)
    && (!form.center.value || w.center_id === form.center.value));
  options(form.window, "全部", ws.map((w) => [w.window_id, `${names.window(w.window_id)} ${names.dept(w.department)}`]));
}
windowOptions();
form.department.addEventListener("change", windowOptions);
form.center.addEventListener("change", windowOptions);
options(form.staff, "全部", Object.entries(dir.staff).map(([id, name]) => [id, `${name}（${id}）`]));
options(form.rule, "全部", Object.entries(dir.rules).map(([r, label]) => [r, label]));
options(form.level, "全部", Object.entries(LEVELS));

function thisMonth() {
  const day = localDay(new Date(dataClock.now()));
  const [y, m] = day.split("-").map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return [`${day.slice(0, 7)}-01`, `${day.slice(0, 7)}-${String(last).padStart(2, "0")}`];
}
function reset() {
  form.reset();
  [form.from.value, form.to.value] = thisMonth();
  windowOptions();
}

function params() {
  const q = new URLSearchParams();
  for (const k of ["from", "to", "region", "center", "department", "window", "staff", "rule", "level", "status"]) {
    if (form[k].value) q.set(k, form[k].value);
  }
  return q;
}

// ---- results, keyset pages ----
let cursors = [null];
let page = 0;

async function search() {
  const q = params();
  q.set("limit", PAGE);
  if (cursors[page]) q.set("cursor", cursors[page]);
  const body = document.getElementById("results");
  body.replaceChildren(el("tr", {}, el("td", { colspan: 10, class: "empty" }, "查询中…")));
  let r;
  try {
    r = await api("/api/v1/history/alerts?" + q);
  } catch (e) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 10 }, el("div", { class: "error" }, e.message))));
    return;
  }
  cursors[page + 1] = r.next_cursor || null;
  const trs = r.items.map((a) => el("tr", { "data-alert": a.alert_id },
    el("td", { class: "num nowrap" }, fmtTime(a.fired_at, true)),
    el("td", {}, chip(a.level)),
    el("td", {}, names.rule(a.rule)),
    el("td", { class: "nowrap" }, names.center(a.center_id)),
    el("td", { class: "nowrap" }, names.dept(a.department)),
    el("td", { class: "nowrap" }, a.window_id ? names.window(a.window_id) : "—"),
    el("td", { class: "nowrap" }, a.staff_id ? names.staff(a.staff_id) : "—"),
    el("td", { class: "nowrap" }, a.case_id ? el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); showCase(a.case_id); } }, a.case_id) : "—"),
    el("td", {}, prettyMessage(a.message)),
    el("td", {}, a.status === "retracted" ? statusChip("retracted") : "有效")));
  body.replaceChildren(...(trs.length ? trs : [el("tr", {}, el("td", { colspan: 10, class: "empty" }, "没有符合条件的告警"))]));
  const first = page * PAGE + (trs.length ? 1 : 0);
  document.getElementById("page-note").textContent = `第 ${page + 1} 页 · 第 ${first}–${page * PAGE + trs.length} 条`;
  document.getElementById("results-note").textContent = `${form.from.value} 至 ${form.to.value}`;
  document.getElementById("prev").disabled = page === 0;
  document.getElementById("next").disabled = !r.next_cursor;
}

document.getElementById("prev").addEventListener("click", () => { page = Math.max(0, page - 1); search(); });
document.getElementById("next").addEventListener("click", () => { page += 1; search(); });

// ---- CSV: fetched with the token (never in a URL), saved as a file ----
document.getElementById("export").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  button.disabled = true;
  button.textContent = "导出中…";
  try {
    const resp = await api("/api/v1/history/alerts.csv?" + params(), { raw: true, headers: { Accept: "text/csv" } });
    const blob = await resp.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `告警记录_${form.from.value}_${form.to.value}.csv` });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (e) {
    alert("导出失败：" + e.message);
  } finally {
    button.disabled = false;
    button.textContent = "导出 CSV";
  }
});

// ---- a case's history ----
const caseDialog = document.getElementById("case-dialog");
document.getElementById("case-close").addEventListener("click", () => caseDialog.close());
async function showCase(id) {
  document.getElementById("case-title").textContent = "办件过程 · " + id;
  const body = document.getElementById("case-body");
  body.replaceChildren(el("p", { class: "muted" }, "读取中…"));
  caseDialog.showModal();
  try {
    const t = await api("/api/v1/cases/" + encodeURIComponent(id) + "/timeline");
    body.replaceChildren(t.events.length ? el("ol", { class: "events" }, t.events.map((e) => el("li", {},
      el("span", { class: "when" }, fmtTime(e.occurred_at, true)),
      el("strong", {}, EVENT_KINDS[e.kind] || e.kind),
      el("span", { class: "muted" }, eventDetail(e))))) : el("p", { class: "muted" }, "没有该办件的事件"));
  } catch (e) {
    showError(body, e);
  }
}

// ---- charts ----
const regionQ = () => (form.region.value ? "&region=" + encodeURIComponent(form.region.value) : "");
const cards = (c) => ({ warning: c.warnings, yellow: c.yellows, red: c.reds });

async function charts() {
  const end = form.to.value.slice(0, 7);
  const [y, m] = end.split("-").map(Number);
  const months = [];
  for (let i = 11; i >= 0; i--) {
    const d = new Date(Date.UTC(y, m - 1 - i, 1));
    months.push(d.toISOString().slice(0, 7));
  }
  try {
    const per = await Promise.all(months.map((mo) => api(`/api/v1/performance?by=department&month=${mo}${regionQ()}`)));
    document.getElementById("chart-month").replaceChildren(columns(
      per.map((p, i) => ({ label: months[i].slice(2).replace("-", "/"), ...cards(p.total.counts) })), "每月违规"));
    const dept = await api(`/api/v1/performance?by=department&from=${form.from.value}&to=${form.to.value}${regionQ()}`);
    const data = dept.rows.map((r) => ({ label: r.key ? names.dept(r.key) : "未归属部门", ...cards(r) }))
      .filter((d) => d.warning + d.yellow + d.red > 0)
      .sort((a, b) => (b.warning + b.yellow + b.red) - (a.warning + a.yellow + a.red))
      .slice(0, 15);
    document.getElementById("chart-dept-note").textContent = `${form.from.value} 至 ${form.to.value}` + (dept.rows.length > 15 ? "，前 15 个" : "");
    document.getElementById("chart-dept").replaceChildren(data.length ? barRows(data, "各部门违规") : el("div", { class: "empty" }, "该期间没有违规"));
  } catch (e) {
    showError(document.getElementById("chart-month"), e);
  }
}

// ---- 绩效 ----
const perfBy = document.getElementById("perf-by");
perfBy.addEventListener("change", perf);
function keyName(by, key) {
  if (by === "department") return names.dept(key);
  if (by === "window") return `${names.window(key)}（${key}）`;
  if (by === "staff") return `${names.staff(key)}（${key}）`;
  return names.item(key);
}
function perfCells(r, total) {
  const c = r.counts || r;
  const s = r.score;
  return [
    el("td", { class: "num" }, c.accepted), el("td", { class: "num" }, c.completed),
    el("td", { class: "num" }, pct(r.rates.completion)), el("td", { class: "num" }, pct(r.rates.on_time)),
    el("td", { class: "num" }, pct(r.rates.early)), el("td", { class: "num" }, pct(r.rates.on_site)),
    el("td", { class: "num" }, pct(r.rates.speedup)),
    el("td", { class: "num" }, r.rates.avg_days_used === null ? "—" : r.rates.avg_days_used.toFixed(1)),
    el("td", { class: "num" }, pct(r.rates.satisfaction)),
    el("td", { class: "num" }, c.warnings), el("td", { class: "num" }, c.yellows), el("td", { class: "num" }, c.reds),
    el("td", { class: "num" }, c.substantiated),
    el("td", { class: "num" }, total ? "" : s.score.toFixed(1)),
    el("td", {}, total ? "" : (r.check_590.pass ? el("span", { class: "pass" }, "达标")
      : el("span", { class: "fail", title: why590(r.check_590) }, "未达标"))),
  ];
}
/// Which of the 590 targets were missed (a target without a base is not judged).
function why590(c) {
  const missed = [];
  if (c.all_on_time === false) missed.push("按时办结率未达 100%");
  if (c.on_site === false) missed.push("现场办结率未达目标");
  if (!c.no_substantiated_complaints) missed.push("有有效投诉");
  return missed.join("；");
}

async function perf() {
  const by = perfBy.value;
  const body = document.getElementById("perf-rows");
  try {
    const p = await api(`/api/v1/performance?by=${by}&from=${form.from.value}&to=${form.to.value}${regionQ()}`);
    body.replaceChildren(...(p.rows.length ? p.rows.map((r) => el("tr", { "data-key": r.key },
      el("td", { class: "num" }, r.rank), el("td", {}, keyName(by, r.key)), perfCells(r, false)))
      : [el("tr", {}, el("td", { colspan: 17, class: "empty" }, "该期间没有办件"))]));
    document.getElementById("perf-total").replaceChildren(el("tr", {}, el("td", {}), el("td", {}, "合计"), perfCells(p.total, true)));
    document.getElementById("perf-note").textContent = `${form.from.value} 至 ${form.to.value} · 100 分制，590 = 按时办结率 100%、现场办结率达标、无有效投诉`;
  } catch (e) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 17 }, el("div", { class: "error" }, e.message))));
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  cursors = [null];
  page = 0;
  search();
  charts();
  perf();
});
document.getElementById("clear").addEventListener("click", () => { reset(); form.requestSubmit(); });

// The data's month: the newest window change tells it when the engine runs on event time.
try {
  const w = await api("/api/v1/windows");
  for (const x of w.items) dataClock.observe(x.updated_at);
} catch (_) { /* the wall clock's month then */ }
reset();
form.requestSubmit();
