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

async function loadPage() {
  const q = params();
  q.set("limit", PAGE);
  if (cursors[page]) q.set("cursor", cursors[page]);
  return api("/api/v1/history/alerts?" + q);
}

function drawPage(r) {
  const body = document.getElementById("results");
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
    el("td", {}, a.status === "open" ? "有效" : statusChip(a.status))));
  body.replaceChildren(...(trs.length ? trs : [el("tr", {}, el("td", { colspan: 10, class: "empty" }, "没有符合条件的告警"))]));
  const first = page * PAGE + (trs.length ? 1 : 0);
  document.getElementById("page-note").textContent = `第 ${page + 1} 页 · 第 ${first}–${page * PAGE + trs.length} 条`;
  document.getElementById("results-note").textContent = `${form.from.value} 至 ${form.to.value}`;
  document.getElementById("prev").disabled = page === 0;
  document.getElementById("next").disabled = !r.next_cursor;
}

/// Another page of the same query: a failure leaves the page shown and says why.
async function turn(to) {
  const was = page;
  page = to;
  try {
    drawPage(await loadPage());
    formError(null);
  } catch (e) {
    page = was;
    formError(e);
  }
}
document.getElementById("prev").addEventListener("click", () => turn(Math.max(0, page - 1)));
document.getElementById("next").addEventListener("click", () => turn(page + 1));

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

async function loadCharts() {
  const end = form.to.value.slice(0, 7);
  const [y, m] = end.split("-").map(Number);
  const months = [];
  for (let i = 11; i >= 0; i--) {
    const d = new Date(Date.UTC(y, m - 1 - i, 1));
    months.push(d.toISOString().slice(0, 7));
  }
  const per = await Promise.all(months.map((mo) => api(`/api/v1/performance?by=department&month=${mo}${regionQ()}`)));
  const dept = await api(`/api/v1/performance?by=department&from=${form.from.value}&to=${form.to.value}${regionQ()}`);
  return { months, per, dept };
}

function drawCharts({ months, per, dept }) {
  document.getElementById("chart-month").replaceChildren(columns(
    per.map((p, i) => ({ label: months[i].slice(2).replace("-", "/"), ...cards(p.total.counts) })), "每月违规"));
  const data = dept.rows.map((r) => ({ label: r.key ? names.dept(r.key) : "未归属部门", ...cards(r) }))
    .filter((d) => d.warning + d.yellow + d.red > 0)
    .sort((a, b) => (b.warning + b.yellow + b.red) - (a.warning + a.yellow + a.red))
    .slice(0, 15);
  document.getElementById("chart-dept-note").textContent = `${form.from.value} 至 ${form.to.value}` + (dept.rows.length > 15 ? "，前 15 个" : "");
  document.getElementById("chart-dept").replaceChildren(data.length ? barRows(data, "各部门违规") : el("div", { class: "empty" }, "该期间没有违规"));
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
const ON_SITE_TARGET = dir.targets?.on_site ?? 0.9;
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
    el("td", { class: "num score" }, total ? "" : s.score.toFixed(1)),
    el("td", { class: "num bonus" }, total || !s.bonus ? "" : "+" + s.bonus.toFixed(0)),
    el("td", { class: "c590" }, total ? "" : (r.check_590.pass ? el("span", { class: "pass" }, "达标")
      : [el("span", { class: "fail" }, "未达标"), el("span", { class: "why" }, why590(r))])),
  ];
}
/// Which of the 590 targets were missed, with the figure that missed it (a target without a
/// base is not judged).
function why590(r) {
  const c = r.check_590;
  const missed = [];
  if (c.all_on_time === false) missed.push(`按时办结率 ${pct(r.rates.on_time)}（应 100%）`);
  if (c.on_site === false) missed.push(`现场办结率 ${pct(r.rates.on_site)}（应 ≥${Math.round(ON_SITE_TARGET * 100)}%）`);
  if (!c.no_substantiated_complaints) missed.push(`有效投诉 ${r.substantiated} 件（应 0）`);
  return missed.join("；");
}

async function loadPerf() {
  return api(`/api/v1/performance?by=${perfBy.value}&from=${form.from.value}&to=${form.to.value}${regionQ()}`);
}

function drawPerf(p) {
  const by = perfBy.value;
  const body = document.getElementById("perf-rows");
  body.replaceChildren(...(p.rows.length ? p.rows.map((r) => el("tr", { "data-key": r.key },
    el("td", { class: "num" }, r.rank), el("td", {}, keyName(by, r.key)), perfCells(r, false)))
    : [el("tr", {}, el("td", { colspan: 18, class: "empty" }, "该期间没有办件"))]));
  document.getElementById("perf-total").replaceChildren(el("tr", {}, el("td", {}), el("td", {}, "合计"), perfCells(p.total, true)));
  document.getElementById("perf-note").textContent = `${form.from.value} 至 ${form.to.value} · 得分为 100 分制（加分单列）；590 = 按时办结率 100%、现场办结率 ≥${Math.round(ON_SITE_TARGET * 100)}%、无有效投诉`;
}

async function perf() {
  try {
    drawPerf(await loadPerf());
    formError(null);
  } catch (e) {
    formError(e);
  }
}

// ---- the query: checked before it is sent; shown only when every part of it came back ----
const formErrorBox = document.getElementById("form-error");
function formError(e) {
  formErrorBox.classList.toggle("hidden", !e);
  formErrorBox.textContent = e ? (e.message || String(e)) : "";
}

/// The form's own check, in the words a person needs; null when it may be sent.
function invalid() {
  const day = /^\d{4}-\d{2}-\d{2}$/;
  if (!day.test(form.from.value)) return "请填写起始日期";
  if (!day.test(form.to.value)) return "请填写结束日期";
  if (form.to.value < form.from.value) return `结束日期 ${form.to.value} 早于起始日期 ${form.from.value}，请调整`;
  return null;
}

/// What the page shows was asked with these values; a failed query puts them back, so the
/// form, the notes and every table always describe the same query.
let shown = null;
function formValues() {
  return Object.fromEntries([...new FormData(form).entries()]);
}
function restore(values) {
  for (const [k, v] of Object.entries(values)) if (form[k]) form[k].value = v;
  windowOptions();
  form.window.value = values.window || "";
}

async function query() {
  const why = invalid();
  if (why) {
    formError(new Error(why));
    return;
  }
  const values = formValues();
  const savedCursors = cursors;
  const savedPage = page;
  cursors = [null];
  page = 0;
  const search = document.getElementById("search");
  search.disabled = true;
  try {
    const [rows, chartData, perfData] = await Promise.all([loadPage(), loadCharts(), loadPerf()]);
    drawPage(rows);
    drawCharts(chartData);
    drawPerf(perfData);
    shown = values;
    formError(null);
  } catch (e) {
    cursors = savedCursors;
    page = savedPage;
    if (shown) restore(shown);
    formError(e);
  } finally {
    search.disabled = false;
  }
}

form.noValidate = true; // the page's own check (invalid()) says what is wrong, in Chinese
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  query();
});
document.getElementById("clear").addEventListener("click", () => { reset(); form.requestSubmit(); });

// The data's month: the newest window change tells it when the engine runs on event time.
try {
  const w = await api("/api/v1/windows");
  for (const x of w.items) dataClock.observe(x.updated_at);
} catch (_) { /* the wall clock's month then */ }
reset();
form.requestSubmit();
