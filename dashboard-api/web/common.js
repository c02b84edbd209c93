// Shared by every page: the session, API calls, names, the live feed, formatting, the top bar.
// Pages build their DOM with el() (text is always set as text, never parsed as HTML).

export const LEVELS = { warning: "预警", yellow: "黄牌", red: "红牌" };
export const LEVEL_ORDER = { red: 0, yellow: 1, warning: 2 };
export const STATUS = {
  open: "待签收", acknowledged: "已签收", supervising: "督办中",
  resolved: "已办结", dismissed: "不予处理", retracted: "已撤销", cleared: "已自动解除",
};
/// Alert statuses that keep an alert on the live screens.
export const ACTIVE = new Set(["open", "acknowledged", "supervising"]);
export const WINDOW_STATE = {
  serving: "服务中", open_idle: "空闲", paused: "暂停", unstaffed: "空岗", closed: "关闭",
};
export const ACTIONS = {
  acknowledge: "签收", supervise: "督办", reply: "回告", resolve: "办结", dismiss: "不予处理", escalate: "逾期升级红牌",
  clear: "系统自动解除",
};
const ROLE = { leader: "领导", inspector: "监察员", auditor: "审计", admin: "管理员", publisher: "数据上报" };
const PAGES = [
  { path: "/ui/leader", title: "大屏", roles: ["leader", "inspector", "admin"] },
  { path: "/ui/inspector", title: "督办台", roles: ["inspector", "admin"] },
  { path: "/ui/auditor", title: "查询与绩效", roles: ["leader", "inspector", "auditor", "admin"] },
  { path: "/ui/sources", title: "数据源", roles: ["leader", "admin"] },
];
const KEY = "jiancha.session";

/// Build an element: el("td", {class: "num"}, "12", child, …). Strings become text nodes.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/// Replace a node's children, skipping null and false (DOM's replaceChildren would print them).
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

export function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ---- session ----

export function session() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || "null");
    if (s && s.token && Date.parse(s.expires_at) > Date.now()) return s;
  } catch (_) { /* a damaged entry is no session */ }
  return null;
}

export function saveSession(login) {
  localStorage.setItem(KEY, JSON.stringify(login));
}

export function logout(reason) {
  localStorage.removeItem(KEY);
  const q = reason ? "?reason=" + encodeURIComponent(reason) : "";
  location.replace("/ui/" + q);
}

const HOME = { leader: "/ui/leader", inspector: "/ui/inspector", auditor: "/ui/auditor", admin: "/ui/leader" };

export function homeOf(role) {
  return HOME[role] || "/ui/";
}

/// The session, or off to the login page; a role that may not see this page goes to its own.
export function requireRole(roles) {
  const s = session();
  if (!s) {
    logout("expired");
    throw new Error("not logged in");
  }
  if (!roles.includes(s.user.role)) {
    location.replace(homeOf(s.user.role));
    throw new Error("not for this role");
  }
  return s;
}

// ---- API ----

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, options = {}) {
  const s = session();
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (s) headers.Authorization = "Bearer " + s.token;
  let body = options.body;
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, { method: options.method || "GET", headers, body });
  } catch (e) {
    throw new ApiError(0, "network", "无法连接服务器，请检查网络后重试");
  }
  if (resp.status === 401 && s) {
    logout("expired");
    throw new ApiError(401, "unauthorized", "登录已过期，请重新登录");
  }
  if (options.raw) {
    if (!resp.ok) throw await errorOf(resp);
    return resp;
  }
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

async function errorOf(resp) {
  let code = "error";
  let message = "服务器返回 " + resp.status;
  try {
    const j = await resp.json();
    code = j.error || code;
    // The Chinese sentence for people; the English one only from an older server.
    message = j.message_zh || j.message || message;
  } catch (_) { /* not JSON */ }
  return new ApiError(resp.status, code, message);
}

// ---- names ----

let directory = null;

/// The names of the caller's jurisdiction (centres, windows, staff, departments, items, rules).
export async function loadDirectory() {
  if (!directory) {
    const d = await api("/api/v1/directory");
    d.windowById = new Map(d.windows.map((w) => [w.window_id, w]));
    d.centerById = new Map(d.centers.map((c) => [c.center_id, c]));
    directory = d;
  }
  return directory;
}

export const names = {
  dept: (code) => (code && directory && directory.departments[code]) || code || "—",
  staff: (id) => (id && directory && directory.staff[id]) || id || "—",
  center: (id) => (id && directory && directory.centerById.get(id)?.name) || id || "—",
  item: (code) => (code && directory && directory.items[code]) || code || "—",
  rule: (r) => (directory && directory.rules[r]) || r,
  /// "3号窗" from "PJ-ZWFW-W003"; the id itself when it has no number.
  window: (id) => {
    if (!id) return "—";
    const m = /(\d+)$/.exec(id);
    return m ? Number(m[1]) + "号窗" : id;
  },
};

// ---- time ----

/// The dashboards' "now": the wall clock, unless the data is more than an hour behind it (a
/// replay, or an engine on event time), then the newest data seen, so that waits, ages and
/// "today" are the data's.
export const dataClock = {
  newest: 0,
  observe(iso) {
    const t = Date.parse(iso);
    if (t > this.newest) this.newest = t;
  },
  now() {
    const wall = Date.now();
    return this.newest && wall - this.newest > 3600e3 ? this.newest : wall;
  },
  behind() {
    return this.now() < Date.now() - 3600e3;
  },
};

const TZ = "Asia/Shanghai";
const fmtFull = new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
const fmtShort = new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
const fmtDay = new Intl.DateTimeFormat("sv-SE", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" });

export function fmtTime(iso, full) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return (full ? fmtFull : fmtShort).format(d).replace(/\//g, "-");
}

/// YYYY-MM-DD in China of an instant (default: now).
export function localDay(date) {
  return fmtDay.format(date || new Date());
}

/// "3 天 2 小时", "45 分钟".
export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "—";
  const m = Math.floor(seconds / 60);
  if (m < 60) return m + " 分钟";
  const h = Math.floor(m / 60);
  if (h < 24) return h + " 小时" + (m % 60 ? " " + (m % 60) + " 分" : "");
  const d = Math.floor(h / 24);
  return d + " 天" + (h % 24 ? " " + (h % 24) + " 小时" : "");
}

/// An engine message with its RFC 3339 times shortened ("2026-11-20T16:25:34+08:00" → "11-20 16:25").
/// Window and staff codes become "3号窗" and names where the directory knows them.
export function prettyMessage(text) {
  return (text || "")
    .replace(/\d{4}-(\d{2})-(\d{2})T(\d{2}):(\d{2}):\d{2}(?:\+08:00)?/g, "$1-$2 $3:$4")
    .replace(/窗口 ([A-Za-z0-9_-]+)/g, (all, id) => (directory?.windowById.has(id) ? names.window(id) : all))
    .replace(/工作人员 ([A-Za-z0-9_-]+)/g, (all, id) => (directory?.staff[id] ? "工作人员 " + directory.staff[id] : all));
}

export function pct(x) {
  return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%";
}

export function chip(level) {
  return el("span", { class: "chip " + level }, LEVELS[level] || level);
}

export function statusChip(status) {
  return el("span", { class: "chip status " + status }, STATUS[status] || status);
}

// ---- top bar ----

/// The top bar: brand, the pages this role may open, who is logged in, log out.
export function topbar(current, extra) {
  const s = session();
  const nav = el("nav", {},
    PAGES.filter((p) => p.roles.includes(s.user.role)).map((p) =>
      el("a", { href: p.path, "aria-current": p.path === current ? "page" : null }, p.title)));
  const bar = el("header", { class: "topbar" },
    el("div", { class: "brand" }, "电子监察", el("small", {}, "jiancha")),
    nav,
    el("div", { class: "spacer" }),
    extra || null,
    el("span", { class: "who" }, `${s.user.name || s.user.username}（${ROLE[s.user.role] || s.user.role} · 区划 ${s.user.region}）`),
    el("button", { class: "logout", onclick: () => logout() }, "退出"));
  document.body.prepend(bar);
  return bar;
}

// ---- live feed ----

/// How long the live feed may stay silent before it counts as dropped (heartbeats: every 15 s).
const LIVE_SILENCE_MS = 40000;

/// The live WebSocket with reconnection. Handlers: snapshot(msg), alert(alert), window(window),
/// state("live" | "down"). A new snapshot replaces everything the page shows.
export class Live {
  constructor(handlers) {
    this.handlers = handlers;
    this.params = {};
    this.backoff = 500;
    this.ws = null;
    this.stopped = false;
  }

  connect(params) {
    this.params = params || {};
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      clearTimeout(this.silence);
    }
    const s = session();
    if (!s) return logout("expired");
    const q = new URLSearchParams(Object.entries(this.params).filter(([, v]) => v));
    q.set("access_token", s.token);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/live?${q}`);
    this.ws = ws;
    // A pulled cable or a dead route closes no socket: the server's heartbeat comes every 15 s,
    // so 40 s without any message means the feed is gone — close it and reconnect.
    const watchdog = () => {
      clearTimeout(this.silence);
      this.silence = setTimeout(() => { ws.close(); dropped(); }, LIVE_SILENCE_MS);
    };
    watchdog();
    ws.onmessage = (ev) => {
      watchdog();
      const msg = JSON.parse(ev.data);
      if (msg.type === "snapshot") {
        this.backoff = 500;
        this.handlers.state?.("live");
        this.handlers.snapshot?.(msg);
      } else if (msg.type === "alert") this.handlers.alert?.(msg.alert);
      else if (msg.type === "window") this.handlers.window?.(msg.window);
    };
    // Once per socket, and only for the current one (connect() replaces it).
    const dropped = async () => {
      if (this.ws !== ws || ws.dropped) return;
      ws.dropped = true;
      clearTimeout(this.silence);
      this.handlers.state?.("down");
      if (this.stopped) return;
      // A refused upgrade looks like any close: ask whether the token still works.
      try { await api("/api/v1/me"); } catch (e) { if (e.status === 401) return; }
      setTimeout(() => this.connect(this.params), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
    ws.onclose = dropped;
  }
}

/// A connection indicator for the top bar.
export function connIndicator() {
  const e = el("span", { class: "conn", id: "conn" }, "连接中");
  e.set = (state) => {
    e.className = "conn " + state;
    e.textContent = state === "live" ? "实时" : "重新连接中…";
  };
  return e;
}

export function showError(where, e) {
  where.replaceChildren(el("div", { class: "error" }, e.message || String(e)));
}
