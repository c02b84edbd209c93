// 大屏: window tiles, the live alert ticker, today's counters and the department ranking.
// Tiles and ticker follow the WebSocket; counters and ranking are re-read from the store
// every 30 seconds and soon after the hall changes.
import {
  ACTIVE, api, chip, connIndicator, dataClock, el, fmtAge, fmtTime, Live, loadDirectory, localDay, names, pct, prettyMessage,
  requireRole, showError, topbar, WINDOW_STATE, LEVEL_ORDER,
} from "/ui/assets/common.js";

requireRole(["leader", "inspector", "admin"]);
const dir = await loadDirectory();

const alerts = new Map();
const windows = new Map();
let fresh = new Set();
let scope = { center: "" };

// ---- top bar: centre switcher, data clock, connection ----
const switcher = el("select", { id: "center", "aria-label": "中心" },
  el("option", { value: "" }, dir.centers.length > 1 ? `全部（${dir.centers.length} 个中心）` : "全部"),
  dir.centers.map((c) => el("option", { value: c.center_id }, c.name)));
const clock = el("span", { class: "who num", id: "clock" });
const conn = connIndicator();
topbar("/ui/leader", el("span", { class: "conn-group" }, switcher, " ", clock, " ", conn));
if (dir.centers.length <= 1) switcher.classList.add("hidden");
switcher.addEventListener("change", () => {
  scope.center = switcher.value;
  alerts.clear();
  windows.clear();
  rebuild = true;
  live.connect({ center: scope.center });
  render();
  refreshStats();
});

function selectedCenter() {
  return scope.center ? dir.centerById.get(scope.center) : null;
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

// ---- counters ----
const counterDefs = [
  ["accepted", "今日受理", ""], ["completed", "今日办结", ""], ["on_time", "按时办结率", ""],
  ["on_site", "现场办结率", ""], ["satisfaction", "满意率", ""],
  ["warning", "在办预警", "warning"], ["yellow", "在办黄牌", "yellow"], ["red", "在办红牌", "red"],
];
const counterEls = {};
document.getElementById("counters").replaceChildren(...counterDefs.map(([k, label, cls]) => {
  const v = el("div", { class: "value", id: "counter-" + k }, "—");
  counterEls[k] = v;
  return el("div", { class: "counter " + cls }, el("div", { class: "label" }, label), v);
}));

async function refreshStats() {
  const day = today();
  const month = day.slice(0, 7);
  try {
    const [d, m] = await Promise.all([
      api(`/api/v1/performance?by=department&from=${day}&to=${day}${regionParam()}`),
      api(`/api/v1/performance?by=department&month=${month}${regionParam()}`),
    ]);
    const t = d.total;
    counterEls.accepted.textContent = t.counts.accepted;
    counterEls.completed.textContent = t.counts.completed;
    counterEls.on_time.textContent = pct(t.rates.on_time);
    counterEls.on_site.textContent = pct(t.rates.on_site);
    counterEls.satisfaction.textContent = pct(t.rates.satisfaction);
    document.getElementById("ranking-month").textContent = `${month} 绩效得分`;
    const rows = m.rows.slice(0, 8).map((r) => el("tr", {},
      el("td", { class: "rank num" }, r.rank),
      el("td", {}, names.dept(r.key)),
      el("td", { class: "num" }, r.completed),
      el("td", { class: "num" }, pct(r.rates.on_time)),
      el("td", { class: "num" }, pct(r.rates.on_site)),
      el("td", { class: "num score" }, scoreBar(r.score.score), r.score.score.toFixed(1))));
    document.getElementById("ranking").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 6, class: "empty" }, "本月暂无办件"))]));
  } catch (e) {
    showError(document.getElementById("ranking"), e);
  }
}

function scoreBar(score) {
  const b = el("span", { class: "score-bar" });
  b.style.width = Math.max(2, Math.min(60, (score / 110) * 60)) + "px";
  return b;
}

// ---- tiles ----
function tile(w, now) {
  const staff = w.staff.length ? w.staff.map(names.staff).join("、") : "无人在岗";
  const wait = w.oldest_ticket_at ? (now - Date.parse(w.oldest_ticket_at)) / 1000 : null;
  const queue = w.waiting
    ? `等候 ${w.waiting} 人 · 最长 ${fmtAge(wait)}`
    : "无人等候";
  return el("div", {
    class: "tile " + w.state, "data-window": w.window_id, "data-state": w.state,
    title: `${w.window_id} · ${names.dept(w.department)} · 今日受理 ${w.accepted_today} / 办结 ${w.completed_today}`,
  },
  el("div", { class: "top" },
    el("div", { class: "wid" }, names.window(w.window_id),
      w.open_alerts ? el("span", { class: "alerts", title: "未处理告警" }, `告警 ${w.open_alerts}`) : null),
    el("span", { class: "state" }, WINDOW_STATE[w.state] || w.state)),
  el("div", { class: "dept" }, names.dept(w.department)),
  el("div", { class: "staff" }, staff),
  el("div", { class: "queue" + (wait !== null && wait > 1800 ? " long" : "") }, queue));
}

// Tiles are keyed by window: a window change replaces its own tile only (a province has
// thousands); the whole grid is rebuilt when the set of windows changes (snapshot, new window)
// and every 30 s (waits grow with time).
const tileEls = new Map();
let dirtyWindows = new Set();
let rebuild = true;

function renderTiles(now) {
  if (rebuild) {
    rebuild = false;
    dirtyWindows = new Set();
    tileEls.clear();
    const list = [...windows.values()].sort((a, b) =>
      (a.department || "").localeCompare(b.department || "") || a.window_id.localeCompare(b.window_id));
    const grid = el("div", { class: "tiles" }, list.map((w) => {
      const t = tile(w, now);
      tileEls.set(w.window_id, t);
      return t;
    }));
    document.getElementById("tiles").replaceChildren(list.length ? grid : el("div", { class: "empty" }, "暂无窗口数据"));
  } else {
    for (const id of dirtyWindows) {
      const old = tileEls.get(id);
      const t = tile(windows.get(id), now);
      old.replaceWith(t);
      tileEls.set(id, t);
    }
    dirtyWindows = new Set();
  }
  const counts = {};
  for (const w of windows.values()) counts[w.state] = (counts[w.state] || 0) + 1;
  const c = selectedCenter() || (dir.centers.length === 1 ? dir.centers[0] : null);
  document.getElementById("tiles-title").replaceChildren(
    (c ? c.name + " · " : "") + "窗口状态 ",
    el("span", { class: "muted" }, `共 ${windows.size} 个窗口，服务中 ${counts.serving || 0}，空闲 ${counts.open_idle || 0}，空岗 ${counts.unstaffed || 0}`));
}

// ---- ticker ----
function renderTicker() {
  const list = [...alerts.values()].sort((a, b) =>
    b.fired_at.localeCompare(a.fired_at) || LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level]);
  const items = list.slice(0, 60).map((a) => el("li", {
    class: a.level + (fresh.has(a.alert_id) ? " fresh" : ""), "data-alert": a.alert_id, "data-level": a.level,
  },
  el("div", { class: "line1" }, chip(a.level), el("span", { class: "when" }, fmtTime(a.fired_at)),
    el("strong", {}, names.rule(a.rule)),
    el("span", { class: "muted" }, [a.department ? names.dept(a.department) : null, a.window_id ? names.window(a.window_id) : null,
      a.staff_id ? names.staff(a.staff_id) : null].filter(Boolean).join(" · "))),
  el("div", { class: "msg" }, prettyMessage(a.message))));
  fresh = new Set();
  document.getElementById("ticker").replaceChildren(...(items.length ? items
    : [el("li", { class: "empty" }, "当前没有未处理的告警")]));
  document.getElementById("ticker-count").textContent = `${alerts.size} 条未处理`;
  const byLevel = { warning: 0, yellow: 0, red: 0 };
  for (const a of alerts.values()) byLevel[a.level]++;
  for (const l of Object.keys(byLevel)) counterEls[l].textContent = byLevel[l];
}

// ---- rendering, at most once a frame ----
let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const now = dataNow();
    renderTiles(now);
    renderTicker();
    clock.textContent = (dataClock.behind() ? "数据时间 " : "") + fmtTime(new Date(now).toISOString(), true);
  });
}

let statsTimer = null;
function statsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(() => { statsTimer = null; refreshStats(); }, 3000);
}

const live = new Live({
  state: (s) => conn.set(s),
  snapshot: (msg) => {
    alerts.clear();
    windows.clear();
    rebuild = true;
    for (const a of msg.alerts) alerts.set(a.alert_id, a);
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
live.connect({ center: scope.center });
setInterval(refreshStats, 30000);
setInterval(() => { rebuild = true; render(); }, 30000);
