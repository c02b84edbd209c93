// 大屏: a wall screen for a centre, or for a jurisdiction of several centres.
//
// - One centre in view: today's figures, 受理/办结 by hour, 按时办结率 by department against the
//   target, open alerts by level, the window tiles grouped under their department headings,
//   the department ranking and the live alert ticker.
// - Several centres (a city or province leader): the rollup first — the centres side by side
//   on the same figures, ranked — and a click on one opens its board (?center=…).
// Tiles, ticker and alert counts follow the WebSocket; the figures are re-read from the store
// every 30 seconds and soon after the hall changes. Everything is sized to the screen: nothing
// scrolls, at 1920×1080 or at 1366×768. Charts are Apache ECharts (canvas renderer), built in.
import {
  ACTIVE, api, chip, dataClock, el, fmtAge, fmtTime, LEVELS, Live, loadDirectory, localDay, names, pct,
  prettyMessage, requireRole, session, showError, topbar, WINDOW_STATE, LEVEL_ORDER,
} from "/ui/assets/common.js";
import { SOURCE_STATUS, sourceLabel, sparkline } from "/ui/assets/charts.js";

requireRole(["leader", "inspector", "admin"]);
const dir = await loadDirectory();
const echarts = globalThis.echarts;

// Colours: red only for 红牌; a missed target is orange, never red.
const C = {
  warning: "#3ba0ff", yellow: "#fadb14", red: "#ff4d4f",
  accepted: "#36cfc9", completed: "#73d13d", ok: "#52c41a", short: "#fa8c16",
  text: "#d6e4f5", muted: "#8ea6bf", line: "#27486b",
};
const TARGET_ON_TIME = dir.targets?.on_time ?? 1;
const TARGET_ON_SITE = dir.targets?.on_site ?? 0.9;

const alerts = new Map();
const windows = new Map();
let fresh = new Set();

// ---- which view: the rollup of several centres, or one centre's board ----
const several = dir.centers.length > 1;
let center = new URLSearchParams(location.search).get("center") || "";
if (center && !dir.centerById.has(center)) center = "";
if (!several && dir.centers.length === 1) center = dir.centers[0].center_id;
const rollupView = () => several && !center;

const switcher = el("select", { id: "center", "aria-label": "中心" },
  el("option", { value: "" }, `全部（${dir.centers.length} 个中心）`),
  dir.centers.map((c) => el("option", { value: c.center_id }, c.name)));
const clock = el("span", { class: "who num", id: "clock" });
const conn = el("span", { class: "conn", id: "conn" }, "连接中");
topbar("/ui/leader", el("span", { class: "conn-group" }, several ? switcher : null, " ", clock, " ", conn));
switcher.addEventListener("change", () => show(switcher.value));
document.getElementById("back").addEventListener("click", () => show(""));
window.addEventListener("popstate", () => show(new URLSearchParams(location.search).get("center") || "", false));

function show(id, push = true) {
  center = id && dir.centerById.has(id) ? id : "";
  if (push) history.pushState(null, "", center ? "?center=" + encodeURIComponent(center) : location.pathname);
  switcher.value = center;
  alerts.clear();
  windows.clear();
  rebuild = true;
  layoutView();
  live.connect({ center });
  render();
  refreshStats();
}

function selectedCenter() {
  return center ? dir.centerById.get(center) : null;
}

function regionParam() {
  const c = selectedCenter();
  return c ? "&region=" + encodeURIComponent(c.region) : "";
}

function dataNow() {
  return dataClock.now();
}

function today() {
  return localDay(new Date(dataNow()));
}

function layoutView() {
  const rollup = rollupView();
  document.body.classList.toggle("rollup-view", rollup);
  document.getElementById("tiles").classList.toggle("hidden", rollup);
  document.getElementById("legend").classList.toggle("hidden", rollup);
  document.getElementById("rollup").classList.toggle("hidden", !rollup);
  document.getElementById("ranking-panel").classList.toggle("hidden", rollup);
  document.getElementById("back").classList.toggle("hidden", rollup || !several);
  const c = selectedCenter();
  document.title = (c ? c.name : "全辖区") + " · 大屏 · 电子监察";
  requestAnimationFrame(resizeCharts);
}

// ---- the screen's type scale: everything in proportion to the screen, readable across a room ----
function fontSize() {
  return Math.round(Math.max(12, Math.min(20, Math.min(innerHeight / 56, innerWidth / 96))));
}

// ---- today's figures ----
const counterDefs = [
  ["accepted", "今日受理", ""], ["completed", "今日办结", ""], ["on_time", "今日按时办结率", "rate"],
  ["on_site", "今日现场办结率", "rate"], ["satisfaction", "今日满意率", ""],
  ["warning", "在办预警", "warning"], ["yellow", "在办黄牌", "yellow"], ["red", "在办红牌", "red"],
];
const counterEls = {};
const targetEls = {};
document.getElementById("counters").replaceChildren(...counterDefs.map(([k, label, cls]) => {
  const v = el("div", { class: "value num", id: "counter-" + k }, "—");
  const t = el("div", { class: "target" });
  counterEls[k] = v;
  targetEls[k] = t;
  return el("div", { class: "kpi " + cls, "data-kpi": k }, el("div", { class: "label" }, label), v, t);
}));

function showRate(key, rate, target) {
  counterEls[key].textContent = pct(rate);
  const met = rate === null || rate === undefined || rate + 1e-9 >= target;
  counterEls[key].parentElement.classList.toggle("short", !met);
  targetEls[key].textContent = `目标 ${Math.round(target * 100)}%` + (met ? "" : " · 未达标");
}

// ---- charts ----
const charts = {};
function chart(id) {
  if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
  return charts[id];
}
function resizeCharts() {
  for (const c of Object.values(charts)) c.resize();
}
addEventListener("resize", () => {
  resizeCharts();
  rebuild = true;
  render();
  refreshStats();
});

function axisStyle(fs) {
  return {
    axisLabel: { color: C.muted, fontSize: fs * 0.8 },
    axisLine: { lineStyle: { color: C.line } },
    splitLine: { lineStyle: { color: C.line, type: "dashed" } },
  };
}

function drawHourly(hours) {
  const fs = fontSize();
  const busy = hours.filter((h) => h.accepted || h.completed).map((h) => h.hour);
  const first = Math.min(8, ...busy);
  const last = Math.max(18, ...busy);
  const shown = hours.filter((h) => h.hour >= first && h.hour <= last);
  chart("chart-hourly").setOption({
    animation: false,
    textStyle: { fontSize: fs },
    legend: { top: 0, right: 4, textStyle: { color: C.text, fontSize: fs * 0.8 }, itemWidth: fs, itemHeight: fs * 0.6 },
    grid: { left: fs * 2.6, right: fs * 0.6, top: fs * 1.8, bottom: fs * 1.6 },
    xAxis: { type: "category", data: shown.map((h) => h.hour + "时"), ...axisStyle(fs), splitLine: { show: false } },
    yAxis: { type: "value", minInterval: 1, ...axisStyle(fs) },
    series: [
      { name: "受理", type: "bar", data: shown.map((h) => h.accepted), itemStyle: { color: C.accepted }, barMaxWidth: fs * 1.4 },
      { name: "办结", type: "line", data: shown.map((h) => h.completed), itemStyle: { color: C.completed },
        lineStyle: { width: 3 }, symbolSize: fs * 0.45 },
    ],
  }, true);
}

/// 按时办结率 of each department (or centre) this month, lowest first, against the target.
function drawOnTime(rows, label, total) {
  const fs = fontSize();
  const box = document.getElementById("chart-ontime");
  const fit = Math.max(3, Math.floor(box.clientHeight / (fs * 1.7)) - 1);
  const judged = rows.filter((r) => r.rates.on_time !== null)
    .sort((a, b) => a.rates.on_time - b.rates.on_time || b.completed - a.completed)
    .slice(0, fit).reverse();
  const short = judged.filter((r) => r.rates.on_time + 1e-9 < TARGET_ON_TIME).length;
  document.getElementById("ontime-note").textContent =
    `本月 ${pct(total)} · 目标 ${Math.round(TARGET_ON_TIME * 100)}%`;
  document.getElementById("ontime-note").classList.toggle("short", total !== null && total + 1e-9 < TARGET_ON_TIME);
  chart("chart-ontime").setOption({
    animation: false,
    title: judged.length ? undefined : {
      text: "本月暂无办结", left: "center", top: "middle",
      textStyle: { color: C.muted, fontSize: fs, fontWeight: 400 },
    },
    grid: { left: fs * 7.2, right: fs * 3.4, top: fs * 0.3, bottom: fs * 1.3 },
    // From a round figure below the lowest rate, so differences of a few points show.
    xAxis: { type: "value", min: (v) => Math.max(0, Math.floor((v.min - 4) / 10) * 10), max: 100, show: false },
    yAxis: {
      type: "category", data: judged.map(label),
      axisLabel: { color: C.text, fontSize: fs * 0.8, width: fs * 6.6, overflow: "truncate" },
      axisLine: { show: false }, axisTick: { show: false },
    },
    series: [{
      type: "bar",
      data: judged.map((r) => ({
        value: +(r.rates.on_time * 100).toFixed(1),
        itemStyle: { color: r.rates.on_time + 1e-9 >= TARGET_ON_TIME ? C.ok : C.short },
      })),
      barMaxWidth: fs * 0.9,
      label: { show: true, position: "right", color: C.text, fontSize: fs * 0.75, formatter: "{c}%" },
      markLine: {
        symbol: "none", silent: true,
        lineStyle: { color: "#ffffff", type: "dashed", width: 2 },
        label: { formatter: `目标 ${Math.round(TARGET_ON_TIME * 100)}%`, color: C.muted, fontSize: fs * 0.7, position: "start", distance: 2 },
        data: [{ xAxis: TARGET_ON_TIME * 100 }],
      },
    }],
  }, true);
  box.dataset.short = short;
}

function drawLevels(byLevel) {
  const fs = fontSize();
  const total = byLevel.warning + byLevel.yellow + byLevel.red;
  chart("chart-levels").setOption({
    animation: false,
    title: {
      text: String(total), subtext: "条在办",
      left: "29%", top: "center", textAlign: "center",
      textStyle: { color: C.text, fontSize: fs * 1.6, fontWeight: 600 },
      subtextStyle: { color: C.muted, fontSize: fs * 0.7 },
      itemGap: 2,
    },
    legend: {
      orient: "vertical", right: "4%", top: "center", itemGap: fs * 0.7,
      itemWidth: fs * 0.9, itemHeight: fs * 0.9,
      textStyle: { color: C.text, fontSize: fs * 0.95 },
      formatter: (name) => {
        const level = Object.keys(LEVELS).find((l) => LEVELS[l] === name);
        return `${name}  ${byLevel[level] ?? 0}`;
      },
    },
    series: [{
      type: "pie", radius: ["52%", "80%"], center: ["30%", "50%"],
      label: { show: false }, labelLine: { show: false }, silent: true,
      itemStyle: { borderColor: "#112a44", borderWidth: 2 },
      data: ["warning", "yellow", "red"].map((l) => ({ name: LEVELS[l], value: byLevel[l], itemStyle: { color: C[l] } })),
    }],
  }, true);
}

// ---- the figures from the store ----
let statsSeq = 0;
async function refreshStats() {
  const seq = ++statsSeq;
  const day = today();
  const month = day.slice(0, 7);
  const by = rollupView() ? "center" : "department";
  try {
    const [d, m, h] = await Promise.all([
      api(`/api/v1/performance?by=${by}&from=${day}&to=${day}${regionParam()}`),
      api(`/api/v1/performance?by=${by}&month=${month}${regionParam()}`),
      api(`/api/v1/performance/hourly?day=${day}${regionParam()}`),
    ]);
    if (seq !== statsSeq) return; // the view changed meanwhile
    const t = d.total;
    counterEls.accepted.textContent = t.counts.accepted;
    counterEls.completed.textContent = t.counts.completed;
    showRate("on_time", t.rates.on_time, TARGET_ON_TIME);
    showRate("on_site", t.rates.on_site, TARGET_ON_SITE);
    counterEls.satisfaction.textContent = pct(t.rates.satisfaction);
    targetEls.accepted.textContent = `本月 ${m.total.counts.accepted}`;
    targetEls.completed.textContent = `本月 ${m.total.counts.completed}`;
    targetEls.satisfaction.textContent = `本月 ${pct(m.total.rates.satisfaction)}`;
    drawHourly(h.hours);
    if (rollupView()) {
      drawOnTime(m.rows, (r) => shortCenter(r.key), m.total.rates.on_time);
      renderRollup(d.rows, m.rows);
    } else {
      drawOnTime(m.rows, (r) => names.dept(r.key), m.total.rates.on_time);
      renderRanking(m.rows, month);
    }
  } catch (e) {
    // The figures shown stay; a lost connection is the banner's to say (connState), anything
    // else is said where the ranking is.
    if (e.code === "network" || downSince) return;
    if (rollupView()) showError(document.getElementById("rollup-rows"), e);
    else {
      document.getElementById("ranking").replaceChildren(
        el("tr", {}, el("td", { colspan: 5 }, el("div", { class: "error" }, e.message))));
    }
  }
}

function shortCenter(id) {
  return names.center(id).replace(/政务服务中心$/, "");
}

function renderRanking(rows, month) {
  document.getElementById("ranking-month").textContent = `${month} 绩效`;
  const box = document.getElementById("ranking-panel");
  const fit = Math.max(3, Math.floor((box.clientHeight - fontSize() * 3.4) / (fontSize() * 1.75)));
  const list = rows.slice(0, fit).map((r) => el("tr", { "data-key": r.key },
    el("td", { class: "rank num" }, el("span", { class: "medal m" + r.rank }, r.rank)),
    el("td", { class: "name" }, names.dept(r.key)),
    el("td", { class: "num" }, r.completed),
    el("td", { class: "num" + (r.rates.on_time !== null && r.rates.on_time + 1e-9 < TARGET_ON_TIME ? " short" : "") }, pct(r.rates.on_time)),
    el("td", { class: "num score" }, r.score.score.toFixed(0),
      r.score.bonus ? el("small", { class: "bonus" }, "+" + r.score.bonus.toFixed(0)) : null)));
  document.getElementById("ranking").replaceChildren(...(list.length ? list
    : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "本月暂无办件"))]));
}

// ---- the rollup: the centres side by side ----
document.getElementById("rollup").replaceChildren(
  el("div", { id: "rollup-rows", class: "rollup-rows" }),
  el("div", { class: "chart-panel rollup-chart" },
    el("h2", {}, "各中心对比 ", el("span", { class: "sub" }, "今日受理、办结 · 在办告警")),
    el("div", { class: "chart", id: "chart-centers" })));
function renderRollup(dayRows, monthRows) {
  const today = new Map(dayRows.map((r) => [r.key, r]));
  const month = new Map(monthRows.map((r) => [r.key, r]));
  const open = new Map();
  for (const a of alerts.values()) {
    const o = open.get(a.center_id) || { warning: 0, yellow: 0, red: 0 };
    o[a.level]++;
    open.set(a.center_id, o);
  }
  // Ranked as the 绩效 table ranks (score, bonus, 按时办结率, cases), among the centres that
  // finished a case this month; the others follow unranked, in the directory's order.
  const ranked = monthRows.filter((r) => r.completed > 0 && dir.centerById.has(r.key)).map((r) => r.key);
  const places = ranked.length;
  for (const c of dir.centers) if (!ranked.includes(c.center_id)) ranked.push(c.center_id);
  const zero = { warning: 0, yellow: 0, red: 0 };
  const rows = ranked.map((id, i) => {
    const d = today.get(id);
    const m = month.get(id);
    const o = open.get(id) || zero;
    const onTime = m?.rates.on_time ?? null;
    const k = m?.check_590;
    return el("tr", { class: "clickable", "data-center": id, onclick: () => show(id), title: "点击查看该中心大屏" },
      el("td", { class: "rank num" }, i < places ? el("span", { class: "medal m" + (i + 1) }, i + 1) : "—"),
      el("td", { class: "name" }, names.center(id), el("small", {}, dir.centerById.get(id)?.region || "")),
      el("td", { class: "num" }, d ? d.accepted : 0),
      el("td", { class: "num" }, d ? d.completed : 0),
      el("td", { class: "num" + (onTime !== null && onTime + 1e-9 < TARGET_ON_TIME ? " short" : "") }, pct(onTime)),
      el("td", { class: "num" }, pct(m?.rates.on_site)),
      el("td", { class: "num" }, pct(m?.rates.satisfaction)),
      el("td", { class: "num lv warning" }, o.warning),
      el("td", { class: "num lv yellow" }, o.yellow),
      el("td", { class: "num lv " + (o.red ? "red" : "") }, o.red),
      el("td", { class: "num score" }, m ? m.score.score.toFixed(0) : "—"),
      el("td", { class: "c590 " + (k ? (k.pass ? "pass" : "fail") : "") }, k ? (k.pass ? "达标" : "未达标") : "—"));
  });
  document.getElementById("tiles-title").replaceChildren("全辖区 · 各中心对比 ",
    el("span", { class: "sub" }, `${dir.centers.length} 个中心，按本月绩效排名（本月无办结的不排名）；点击一行查看该中心`));
  document.getElementById("rollup-rows").replaceChildren(el("table", { class: "rollup-table", id: "rollup-table" },
    el("thead", {}, el("tr", {},
      el("th", {}, "名次"), el("th", {}, "中心"), el("th", { class: "num" }, "今日受理"), el("th", { class: "num" }, "今日办结"),
      el("th", { class: "num" }, "本月按时率"), el("th", { class: "num" }, "现场办结率"), el("th", { class: "num" }, "满意率"),
      el("th", { class: "num" }, "预警"), el("th", { class: "num" }, "黄牌"), el("th", { class: "num" }, "红牌"),
      el("th", { class: "num" }, "得分"), el("th", {}, "590"))),
    el("tbody", {}, rows)));
  drawCenters(ranked, today, open);
}

/// The centres side by side: today's 受理 and 办结, and their open alerts by level.
function drawCenters(ranked, today, open) {
  const fs = fontSize();
  const zero = { warning: 0, yellow: 0, red: 0 };
  const bar = (name, color, value, extra) => ({ name, type: "bar", data: ranked.map(value), itemStyle: { color },
    barMaxWidth: fs * 2.2, label: { show: true, position: "top", color: C.text, fontSize: fs * 0.75 }, ...extra });
  chart("chart-centers").setOption({
    animation: false,
    legend: { top: 0, right: 4, textStyle: { color: C.text, fontSize: fs * 0.8 }, itemWidth: fs, itemHeight: fs * 0.6 },
    grid: [
      { left: fs * 2.8, right: "52%", top: fs * 2.2, bottom: fs * 2 },
      { left: "54%", right: fs * 0.8, top: fs * 2.2, bottom: fs * 2 },
    ],
    xAxis: [0, 1].map((i) => ({ type: "category", gridIndex: i, data: ranked.map(shortCenter), ...axisStyle(fs),
      axisLabel: { color: C.text, fontSize: fs * 0.8, interval: 0, overflow: "truncate", width: fs * 6 }, splitLine: { show: false } })),
    yAxis: [0, 1].map((i) => ({ type: "value", gridIndex: i, minInterval: 1, ...axisStyle(fs) })),
    series: [
      bar("今日受理", C.accepted, (id) => today.get(id)?.accepted ?? 0),
      bar("今日办结", C.completed, (id) => today.get(id)?.completed ?? 0),
      ...["warning", "yellow", "red"].map((l) => bar("在办" + LEVELS[l], C[l], (id) => (open.get(id) || zero)[l],
        { xAxisIndex: 1, yAxisIndex: 1, stack: "open", label: { show: false } })),
    ],
  }, true);
}

// ---- tiles ----
/// Whether `now` falls in the hall's lunch break: between two spans of `office_hours`.
const spans = String(dir.office_hours || "09:00-12:00,13:30-17:30").split(",").map((s) =>
  s.split("-").map((t) => { const [h, m] = t.split(":").map(Number); return h * 60 + m; }));
function inLunch(now) {
  const hm = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false })
    .format(new Date(now)).split(":").map(Number);
  const m = hm[0] * 60 + hm[1];
  return spans.some((s, i) => i + 1 < spans.length && m >= s[1] && m < spans[i + 1][0]);
}

function openAlertsOf(windowId) {
  const n = { warning: 0, yellow: 0, red: 0, total: 0 };
  for (const a of alerts.values()) {
    if (a.window_id === windowId) {
      n[a.level]++;
      n.total++;
    }
  }
  return n;
}

function tile(w, now, lunch) {
  const shown = lunch && w.state !== "serving" ? "lunch" : w.state;
  const label = shown === "lunch" ? "午休" : WINDOW_STATE[w.state] || w.state;
  const staff = w.staff.length ? w.staff.map(names.staff).join("、") : "无人在岗";
  const wait = w.oldest_ticket_at ? (now - Date.parse(w.oldest_ticket_at)) / 1000 : null;
  const n = openAlertsOf(w.window_id);
  const worst = n.red ? "red" : n.yellow ? "yellow" : "warning";
  return el("div", {
    class: "tile " + shown, "data-window": w.window_id, "data-state": w.state, "data-shown": shown,
    title: `${w.window_id} · ${names.dept(w.department)} · 今日受理 ${w.accepted_today} / 办结 ${w.completed_today}`,
  },
  el("div", { class: "t-head" },
    windowLabel(w.window_id),
    el("span", { class: "state" }, label)),
  el("div", { class: "t-mid" },
    el("span", { class: "staff" }, staff),
    n.total ? el("span", { class: "alerts " + worst, title: `未处理告警：预警 ${n.warning}，黄牌 ${n.yellow}，红牌 ${n.red}`, "aria-label": `未处理告警 ${n.total} 条` }, n.total) : null),
  el("div", { class: "queue" + (wait !== null && wait > 1800 ? " long" : "") },
    w.waiting ? `等候 ${w.waiting} 人 · ${fmtAge(wait)}` : `受理 ${w.accepted_today} · 办结 ${w.completed_today}`));
}

/// A tile's height per unit of width: three lines of text.
const TILE_ASPECT = 0.66;

/// "34号窗" with the number large and 号窗 small, so the state beside it fits a narrow tile.
function windowLabel(id) {
  const label = names.window(id);
  const m = /^(\d+)(号窗)$/.exec(label);
  return el("span", { class: "wid" }, m ? [m[1], el("small", {}, m[2])] : label);
}

/// Tile size that fits every department group into the area without scrolling: the largest
/// width whose packing (groups side by side, wrapping; a group's tiles wrapping inside it)
/// fits the height. The rows are then filled by flex-grow (CSS), which never re-wraps them.
function fitTiles(area, groups, fs) {
  const W = area.clientWidth - 2; // a pixel's rounding either side
  const H = area.clientHeight;
  const gap = Math.round(fs * 0.5);
  const head = Math.round(fs * 1.45);
  const pad = Math.round(fs * 0.35);
  for (let tw = Math.round(fs * 9); tw >= fs * 4.2; tw -= 2) {
    const th = Math.round(tw * TILE_ASPECT);
    let x = 0; let rowH = 0; let y = 0;
    for (const g of groups) {
      const perRow = Math.max(1, Math.floor((W - 2 * pad + gap) / (tw + gap)));
      const cols = Math.min(g.length, perRow);
      const gw = cols * tw + (cols - 1) * gap + 2 * pad + 2; // + the group's border
      const gh = head + Math.ceil(g.length / cols) * (th + gap) - gap + pad;
      if (x > 0 && x + gw > W) { y += rowH + gap; x = 0; rowH = 0; }
      x += gw + gap;
      rowH = Math.max(rowH, gh);
    }
    if (y + rowH <= H) return { tw, th, gap, head, pad, W };
  }
  const tw = Math.round(fs * 4.2);
  return { tw, th: Math.round(tw * TILE_ASPECT), gap, head, pad, W };
}

/// A group's width as fitTiles() packed it: its flex basis, so the browser wraps the rows
/// exactly so (the tiles' text never widens a group).
function groupWidth(f, n) {
  const perRow = Math.max(1, Math.floor((f.W - 2 * f.pad + f.gap) / (f.tw + f.gap)));
  const cols = Math.min(n, perRow);
  return cols * f.tw + (cols - 1) * f.gap + 2 * f.pad + 2;
}

const tileEls = new Map();
let dirtyWindows = new Set();
let rebuild = true;

function windowOrder(a, b) {
  const n = (id) => { const m = /(\d+)$/.exec(id); return m ? Number(m[1]) : Infinity; };
  return n(a.window_id) - n(b.window_id) || a.window_id.localeCompare(b.window_id);
}

function renderTiles(now) {
  const lunch = inLunch(now);
  const area = document.getElementById("tiles");
  if (rebuild || lunch !== renderTiles.lunch) {
    rebuild = false;
    renderTiles.lunch = lunch;
    dirtyWindows = new Set();
    tileEls.clear();
    // Departments in the order of their first window; windows in window order.
    const groups = new Map();
    for (const w of [...windows.values()].sort(windowOrder)) {
      const k = w.department || "";
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(w);
    }
    const fs = fontSize();
    const f = fitTiles(area, [...groups.values()], fs);
    area.style.setProperty("--tw", f.tw + "px");
    area.style.setProperty("--th", f.th + "px");
    area.style.setProperty("--gap", f.gap + "px");
    area.style.setProperty("--head", f.head + "px");
    area.style.setProperty("--pad", f.pad + "px");
    const list = [...groups.entries()].map(([dept, ws]) => {
      const g = el("div", { class: "dept-group", "data-department": dept },
        el("h3", {}, names.dept(dept)),
        el("div", { class: "dept-tiles" }, ws.map((w) => {
          const t = tile(w, now, lunch);
          tileEls.set(w.window_id, t);
          return t;
        })));
      g.style.flexBasis = groupWidth(f, ws.length) + "px";
      return g;
    });
    area.replaceChildren(...(list.length ? list : [el("div", { class: "empty" }, "暂无窗口数据")]));
  } else {
    for (const id of dirtyWindows) {
      const t = tile(windows.get(id), now, lunch);
      tileEls.get(id).replaceWith(t);
      tileEls.set(id, t);
    }
    dirtyWindows = new Set();
  }
  const counts = {};
  for (const w of windows.values()) counts[w.state] = (counts[w.state] || 0) + 1;
  const c = selectedCenter();
  document.getElementById("tiles-title").replaceChildren(
    (c ? c.name + " · " : "") + "窗口状态 ",
    el("span", { class: "sub" }, `共 ${windows.size} 个窗口 · 服务中 ${counts.serving || 0} · 空闲 ${counts.open_idle || 0} · 空岗 ${counts.unstaffed || 0}`
      + (lunch ? " · 午休时段" : "")));
}

const legend = [["serving", "服务中"], ["open_idle", "空闲"], ["paused", "暂停"], ["lunch", "午休"], ["unstaffed", "空岗"], ["closed", "关闭"]];
document.getElementById("legend").replaceChildren(...legend.map(([k, t]) => el("span", { class: k }, t)));

// ---- ticker and alert counts ----
function renderTicker() {
  const list = [...alerts.values()].sort((a, b) =>
    b.fired_at.localeCompare(a.fired_at) || LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level]);
  const items = list.slice(0, 40).map((a) => el("li", {
    class: a.level + (fresh.has(a.alert_id) ? " fresh" : ""), "data-alert": a.alert_id, "data-level": a.level,
  },
  el("div", { class: "line1" }, chip(a.level), el("span", { class: "when num" }, fmtTime(a.fired_at)),
    el("strong", {}, names.rule(a.rule)),
    el("span", { class: "where" }, [several && !center ? shortCenter(a.center_id) : null,
      a.department ? names.dept(a.department) : null, a.window_id ? names.window(a.window_id) : null,
      a.staff_id ? names.staff(a.staff_id) : null].filter(Boolean).join(" · "))),
  el("div", { class: "msg" }, prettyMessage(a.message))));
  fresh = new Set();
  document.getElementById("ticker").replaceChildren(...(items.length ? items
    : [el("li", { class: "empty" }, "当前没有未处理的告警")]));
  document.getElementById("ticker-count").textContent = `${alerts.size} 条未处理`;
  const byLevel = { warning: 0, yellow: 0, red: 0 };
  for (const a of alerts.values()) byLevel[a.level]++;
  for (const l of Object.keys(byLevel)) counterEls[l].textContent = byLevel[l];
  drawLevels(byLevel);
}

// ---- the connection: a dropped feed dims the screen, so stale data never passes for live ----
let downSince = null;
function connState(s) {
  conn.className = "conn " + s;
  conn.textContent = s === "live" ? "实时" : "已断开";
  const banner = document.getElementById("offline");
  if (s === "live") {
    downSince = null;
    document.body.classList.remove("offline");
    banner.classList.add("hidden");
    return;
  }
  downSince = downSince || dataNow();
  document.body.classList.add("offline");
  banner.classList.remove("hidden");
  banner.replaceChildren(el("strong", {}, "实时连接已中断，正在重新连接…"),
    el("span", {}, `画面停留在 ${fmtTime(new Date(downSince).toISOString())} 的数据，不是实时情况`));
  clock.textContent = "已断开 · 数据停留在 " + fmtTime(new Date(downSince).toISOString(), true);
}

// ---- rendering, at most once a frame ----
let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const now = dataNow();
    if (!rollupView()) renderTiles(now);
    renderTicker();
    if (!downSince) clock.textContent = (dataClock.behind() ? "数据时间 " : "") + fmtTime(new Date(now).toISOString(), true);
  });
}

let statsTimer = null;
function statsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(() => { statsTimer = null; refreshStats(); }, 3000);
}

const live = new Live({
  state: connState,
  snapshot: (msg) => {
    alerts.clear();
    windows.clear();
    rebuild = true;
    for (const a of msg.alerts) if (ACTIVE.has(a.status)) alerts.set(a.alert_id, a);
    for (const w of msg.windows) {
      windows.set(w.window_id, w);
      dataClock.observe(w.updated_at);
    }
    render();
    refreshStats();
  },
  alert: (a) => {
    if (ACTIVE.has(a.status)) {
      if (!alerts.has(a.alert_id)) fresh.add(a.alert_id);
      alerts.set(a.alert_id, a);
    } else alerts.delete(a.alert_id);
    if (a.window_id && tileEls.has(a.window_id) && !rebuild) dirtyWindows.add(a.window_id);
    render();
    statsSoon();
  },
  window: (w) => {
    if (tileEls.has(w.window_id) && !rebuild) dirtyWindows.add(w.window_id);
    else rebuild = true;
    windows.set(w.window_id, w);
    dataClock.observe(w.updated_at);
    render();
    statsSoon();
  },
});
switcher.value = center;
layoutView();
live.connect({ center });
setInterval(refreshStats, 30000);
setInterval(() => { rebuild = true; render(); }, 30000);

// ---- 数据源: the sources' health (admins and leaders; an inspector's screen has no panel) ----
const seesSources = ["leader", "admin"].includes(session().user.role);
document.body.classList.toggle("no-sources", !seesSources);
document.getElementById("sources-panel").classList.toggle("hidden", !seesSources);

/// Silent first, then late, then live; within each, by name.
const SOURCE_ORDER = { silent: 0, late: 1, live: 2 };

async function refreshSources() {
  const list = document.getElementById("source-list");
  const note = document.getElementById("sources-note");
  try {
    const answer = await api("/api/v1/sources?" + regionParam().slice(1));
    const sources = [...answer.sources].sort((a, b) =>
      (SOURCE_ORDER[a.status] - SOURCE_ORDER[b.status]) || sourceLabel(a).localeCompare(sourceLabel(b), "zh-CN"));
    const count = (st) => sources.filter((x) => x.status === st).length;
    note.textContent = `在线 ${count("live")} · 迟报 ${count("late")} · 静默 ${count("silent")}`;
    if (!sources.length) {
      list.replaceChildren(el("li", { class: "empty" }, "暂无数据源"));
      return;
    }
    list.replaceChildren(...sources.map((x) => el("li", { class: x.status, "data-source": x.source },
      el("span", { class: "dot" }),
      el("span", { class: "name", title: x.source }, sourceLabel(x)),
      sparkline(x.per_day, x.status, `${sourceLabel(x)} 近 ${answer.days.length} 天每日事件`),
      el("span", { class: "state" }, SOURCE_STATUS[x.status] || x.status,
        x.last_reported_at ? ` ${fmtTime(x.last_reported_at)}` : ""))));
  } catch (e) {
    showError(list, e);
  }
}
if (seesSources) {
  refreshSources();
  setInterval(refreshSources, 60000);
}
