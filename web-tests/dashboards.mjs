// The dashboards in a real browser (Debian's headless Chromium, driven by playwright-core).
// Started by tests/web.rs, which prepares a reference directory, users and a running
// `jiancha serve --clock event`, and passes:
//   JIANCHA_URL      base URL of the running jiancha
//   WEB_PASSWORD     the password of every test user
//   EVENTS_FILE      a simulated week of 平江 (NDJSON), sent here up to 2026-11-20 10:30
//   ITEMS_CSV        the reference's items.csv (the hand-made overdue cases use one of its items)
//   SCREENSHOTS      where to save a screenshot of each view
//   CHROMIUM         the browser executable
// Every step asserts what a person at the screen would notice; a failure saves a screenshot of
// every open page and exits non-zero.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.JIANCHA_URL;
const PASSWORD = process.env.WEB_PASSWORD;
const SHOTS = process.env.SCREENSHOTS;
mkdirSync(SHOTS, { recursive: true });
const CUTOFF = "2026-11-20T10:30:00+08:00";
const LIVE_BUDGET_MS = 2000;

const pages = [];
let browser;

async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    for (const [i, p] of pages.entries()) {
      await p.screenshot({ path: join(SHOTS, `failure-${i}.png`) }).catch(() => {});
    }
    await browser?.close();
    process.exit(1);
  }
}

// ---- the API, as the window systems and the test's own checks use it ----
async function login(username) {
  const r = await fetch(BASE + "/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(r.status, 200, `login ${username}`);
  return (await r.json()).token;
}

async function get(path, token) {
  const r = await fetch(BASE + path, { headers: { Authorization: "Bearer " + token } });
  assert.equal(r.status, 200, `GET ${path}: ${await r.clone().text()}`);
  return r.json();
}

async function send(lines, token) {
  const r = await fetch(BASE + "/api/v1/events", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/x-ndjson" },
    body: lines.join("\n"),
  });
  const body = await r.json();
  assert.equal(r.status, 200, `ingest: ${JSON.stringify(body.results?.find((x) => x.status !== "accepted"))}`);
  assert.equal(body.accepted, lines.length);
}

const at = (local) => local + "+08:00";
let seq = 0;
function event(kind, occurred, fields) {
  seq += 1;
  const reported = new Date(Date.parse(at(occurred)) + 5000).toISOString().replace(/\.\d+Z$/, "Z");
  return JSON.stringify({
    event_id: `web-${seq}`, kind, occurred_at: at(occurred), reported_at: reported,
    center_id: "PJ-ZWFW", region: "430626", ...fields,
  });
}

async function newPage(viewport = { width: 1920, height: 1080 }) {
  const ctx = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Asia/Shanghai", acceptDownloads: true });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.log(`page error (${page.url()}): ${e.message}`));
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
  pages.push(page);
  return page;
}

// Nothing on the page scrolls sideways (the 大屏: not at all): what a person at either screen
// size would have to scroll to see is not on their screen.
async function assertFits(page, what, { vertical = false } = {}) {
  const m = await page.evaluate(() => {
    const d = document.scrollingElement;
    return { sw: d.scrollWidth, w: innerWidth, sh: d.scrollHeight, h: innerHeight };
  });
  assert.ok(m.sw <= m.w, `${what} scrolls sideways: scrollWidth ${m.sw} > ${m.w}`);
  if (vertical) assert.ok(m.sh <= m.h, `${what} scrolls: scrollHeight ${m.sh} > ${m.h}`);
}

// Content-Security-Policy refusals show up as console errors: there must be none.
const cspViolations = [];

async function logIn(page, username) {
  await page.goto(BASE + "/");
  await page.waitForURL(/\/ui\/$/);
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("#submit");
}

// The top bar is drawn once the page has the user's names: wait for it, then read it.
async function navOf(page) {
  await page.waitForSelector(".topbar nav a");
  return page.$$eval(".topbar nav a", (as) => as.map((a) => a.textContent));
}

// ---- the hall's data ----
const publisher = await login("web-publisher");
const admin = await login("web-admin");
const leaderToken = await login("web-leader");
const inspectorToken = await login("web-inspector");

const items = readFileSync(process.env.ITEMS_CSV, "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
// The promised item with the shortest promise: three cases accepted in September are long
// overdue by November (warning, yellow, then red after the 督办 period).
const item = items.filter((r) => r[3] === "promised").sort((a, b) => Number(a[6]) - Number(b[6]))[0];
const CASES = ["WEB-CASE-1", "WEB-CASE-2", "WEB-CASE-3"];

await step("a simulated morning of 平江 and three September cases are ingested over HTTP", async () => {
  // In time order, September first: on an event clock, an event older than the clock is late
  // and its case's deadlines are judged without it.
  const w = { window_id: "PJ-ZWFW-W001", staff_id: "PJ-ZWFW-S001", department: item[2] };
  await send([
    event("case.accepted", "2026-09-01T10:00:00", { case_id: CASES[0], item_code: item[0], channel: "hall", ...w }),
    event("case.suspended", "2026-09-01T15:00:00", { case_id: CASES[0], reason: "等待档案调取" }),
    event("case.accepted", "2026-09-02T11:00:00", { case_id: CASES[1], item_code: item[0], channel: "hall", ...w }),
    event("case.extended", "2026-09-03T10:00:00", { case_id: CASES[0], extra_days: 2 }),
    event("case.accepted", "2026-09-03T15:00:00", { case_id: CASES[2], item_code: item[0], channel: "hall", ...w }),
    event("case.resumed", "2026-09-07T10:00:00", { case_id: CASES[0], reason: "档案已调取" }),
  ], publisher);
  const lines = readFileSync(process.env.EVENTS_FILE, "utf8").split("\n")
    .filter((l) => l && JSON.parse(l).occurred_at < CUTOFF);
  for (let i = 0; i < lines.length; i += 2000) await send(lines.slice(i, i + 2000), publisher);
  // Another county's centre: the 平江 users must never see it. Sent last: once it shows, the
  // engine has applied everything before it (one log, in order).
  await send([JSON.stringify({
    event_id: "yy-1", kind: "window.opened", occurred_at: at("2026-11-20T10:30:00"), reported_at: at("2026-11-20T10:30:01"),
    center_id: "YY-ZWFW", region: "430602", window_id: "YY-ZWFW-W001", department: "D01",
  })], admin);
  const yy = await login("web-leader-yy");
  for (let i = 0; ; i++) {
    const w = await get("/api/v1/windows", yy);
    if (w.items.length === 1) break;
    assert.ok(i < 240, "the engine did not apply the events within 60 s");
    await new Promise((r) => setTimeout(r, 250));
  }
});

browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });

await step("the login page refuses a wrong password and a publisher account, in Chinese", async () => {
  const page = await newPage();
  await page.goto(BASE + "/ui/");
  await page.fill("#username", "web-leader");
  await page.fill("#password", "not the password");
  await page.click("#submit");
  await page.waitForSelector("#message.error");
  assert.match(await page.textContent("#message"), /用户名或密码错误/);
  await page.fill("#username", "web-publisher");
  await page.fill("#password", PASSWORD);
  await page.click("#submit");
  await page.waitForFunction(() => /数据上报账号/.test(document.querySelector("#message").textContent));
  assert.equal(new URL(page.url()).pathname, "/ui/");
  await page.fill("#password", "");
  await page.fill("#username", "");
  await page.evaluate(() => { document.querySelector("#message").className = "hidden"; });
  await page.screenshot({ path: join(SHOTS, "login.png") });
  await page.context().close();
  pages.pop();
});

await step("数据源: the source-health page shows 平江's sources with the figures of what was sent, and the 大屏's panel", async () => {
  // What the simulated week sent (all through the publisher, so its source), worked out here
  // from the file: events per day, report delays, case events reported after their case's
  // completion report.
  const sent = readFileSync(process.env.EVENTS_FILE, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.occurred_at < CUTOFF);
  assert.ok(sent.every((e) => !e.source && e.reported_at && e.region === "430626"));
  const days = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"];
  const perDay = days.map((d) => sent.filter((e) => e.occurred_at.startsWith(d)).length);
  const delays = sent.map((e) => (Date.parse(e.reported_at) - Date.parse(e.occurred_at)) / 1000).sort((a, b) => a - b);
  const rank = (q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
  const done = new Map();
  for (const e of sent) {
    if (e.kind !== "case.completed") continue;
    const t = Date.parse(e.reported_at);
    if (!done.has(e.case_id) || t < done.get(e.case_id)) done.set(e.case_id, t);
  }
  const caseEvents = sent.filter((e) => e.kind.startsWith("case.") && e.kind !== "case.completed");
  const after = caseEvents.filter((e) => done.has(e.case_id) && Date.parse(e.reported_at) > done.get(e.case_id)).length;

  const page = await newPage();
  await logIn(page, "web-leader");
  await page.waitForURL(/\/ui\/leader$/);
  await page.goto(BASE + "/ui/sources?from=2026-11-16&to=2026-11-20");
  await page.waitForSelector('#rows tr[data-source="http:web-publisher"]');
  const rows = await page.$$eval("#rows tr[data-source]", (trs) => trs.map((tr) => ({
    source: tr.dataset.source,
    status: tr.dataset.status,
    text: tr.textContent,
    figures: Object.fromEntries([...tr.querySelectorAll("[data-figure]")].map((td) => [td.dataset.figure, td.textContent])),
    points: tr.querySelector("polyline")?.getAttribute("points").split(" ").length,
    spark: tr.querySelector("svg.spark")?.getAttribute("class"),
  })));
  // 平江's two sources, named from sources.csv; never 岳阳楼区's.
  assert.deepEqual(rows.map((r) => r.source), ["http:web-publisher", "pj-old-approval"]);
  const body = await page.textContent("body");
  assert.ok(!body.includes("岳阳楼") && !body.includes("yy-approval"), "another county's source is on 平江's page");
  const [pub, old] = rows;
  assert.match(pub.text, /平江窗口系统/);
  assert.equal(pub.figures.events, String(sent.length));
  const p50 = await page.$eval('#rows tr[data-source="http:web-publisher"]', (tr) => tr.querySelector('[data-figure="p50"]').textContent);
  const secs = (s) => (s < 60 ? `${s} 秒` : null);
  if (secs(rank(0.5))) assert.equal(p50, secs(rank(0.5)));
  if (secs(rank(0.95))) assert.equal(pub.figures.p95, secs(rank(0.95)));
  assert.equal(pub.figures.after, caseEvents.length ? (after / caseEvents.length * 100).toFixed(1) + "%" : "—");
  assert.equal(pub.figures.corrections, "0");
  assert.equal(pub.figures.withdrawals, "0");
  assert.equal(pub.figures.last.slice(0, 10), "2026-11-20");
  // The sparkline has a point per day; weeks after its last report the feed is silent.
  assert.equal(pub.points, days.length);
  assert.equal(pub.status, "silent");
  assert.match(pub.spark, /spark-silent/);
  const api = await get("/api/v1/sources?from=2026-11-16&to=2026-11-20", leaderToken);
  assert.deepEqual(api.sources[0].per_day, perDay, "events per day as sent");
  // Listed but never heard from: silent, 从未报送.
  assert.match(old.text, /平江旧审批系统/);
  assert.equal(old.figures.last, "从未报送");
  assert.equal(old.status, "silent");
  await assertFits(page, "数据源 at 1920×1080");
  await page.screenshot({ path: join(SHOTS, "sources-1920.png") });
  // The 大屏's panel: a row per source with its colour, on a laptop screen without scrolling.
  await page.setViewportSize({ width: 1366, height: 768 });
  await page.goto(BASE + "/ui/leader");
  await page.waitForSelector('#source-list li[data-source="http:web-publisher"].silent');
  assert.match(await page.textContent("#sources-panel"), /平江窗口系统/);
  assert.match(await page.textContent("#sources-note"), /静默 2/);
  await assertFits(page, "the 大屏 with its 数据源 panel at 1366×768", { vertical: true });
  await page.screenshot({ path: join(SHOTS, "leader-sources-1366.png") });
  await page.context().close();
  pages.pop();
});

const leader = await newPage();
await step("the leader lands on the 大屏 with every window of 平江 as a tile, and no other county's", async () => {
  await logIn(leader, "web-leader");
  await leader.waitForURL(/\/ui\/leader$/);
  assert.deepEqual(await navOf(leader), ["大屏", "查询与绩效", "数据源"]);
  await leader.waitForFunction(() => document.querySelectorAll(".tile").length === 40);
  assert.equal(await leader.$('.tile[data-window^="YY-"]'), null);
  const states = await leader.$$eval(".tile", (ts) => ts.map((t) => t.dataset.state));
  assert.ok(states.some((s) => s === "serving" || s === "open_idle"), `a weekday morning has open windows: ${states}`);
  // The counters are the store's 绩效 of the data's day.
  const perf = await get("/api/v1/performance?by=department&from=2026-11-20&to=2026-11-20", leaderToken);
  await leader.waitForFunction((n) => document.querySelector("#counter-accepted").textContent === String(n), perf.total.counts.accepted);
  assert.ok(perf.total.counts.accepted > 0);
  assert.match(await leader.textContent("#clock"), /数据时间 2026-11-20 1[01]:/);
  const body = await leader.textContent("body");
  assert.ok(!body.includes("YY-ZWFW") && !body.includes("岳阳楼"), "another county's data is on the 平江 screen");
  // A county leader has one centre: the board, not the rollup.
  assert.equal(await leader.$("#rollup-table"), null);
});

await step("the 大屏 reads as a 政务大屏: charts drawn, tiles under department headings in window order, red only for 红牌, no scroll", async () => {
  // ECharts draws on canvases: today's hours, 按时办结率 against the target, alerts by level.
  for (const id of ["chart-hourly", "chart-ontime", "chart-levels"]) {
    await leader.waitForSelector(`#${id} canvas`);
  }
  const hourly = await get("/api/v1/performance/hourly?day=2026-11-20", leaderToken);
  const perf = await get("/api/v1/performance?by=department&from=2026-11-20&to=2026-11-20", leaderToken);
  assert.equal(hourly.hours.length, 24);
  assert.equal(hourly.hours.reduce((n, h) => n + h.accepted, 0), perf.total.counts.accepted, "the hours add up to the day");
  assert.match(await leader.textContent("#ontime-note"), /目标 100%/);
  // Tiles under department headings; within a department, windows in window order; the
  // departments in the order of their first window.
  const groups = await leader.$$eval(".dept-group", (gs) => gs.map((g) => ({
    heading: g.querySelector("h3").textContent,
    windows: [...g.querySelectorAll(".tile")].map((t) => Number(t.dataset.window.replace(/\D/g, ""))),
  })));
  assert.ok(groups.length > 1 && groups.every((g) => g.heading && !/^D\d+$/.test(g.heading)), JSON.stringify(groups));
  for (const g of groups) assert.deepEqual(g.windows, [...g.windows].sort((a, b) => a - b), g.heading);
  const firsts = groups.map((g) => g.windows[0]);
  assert.deepEqual(firsts, [...firsts].sort((a, b) => a - b));
  // Red is for 红牌 only: a tile's badge is red exactly when the window has an open red card.
  const live = await get("/api/v1/alerts?status=active&limit=500", leaderToken);
  const reds = new Set(live.items.filter((a) => a.level === "red" && a.window_id).map((a) => a.window_id));
  const badges = await leader.$$eval(".tile .alerts", (bs) => bs.map((b) => ({ w: b.closest(".tile").dataset.window, red: b.classList.contains("red") })));
  for (const b of badges) assert.equal(b.red, reds.has(b.w), `badge of ${b.w}`);
  assert.equal(await leader.textContent("#counter-red"), String(live.items.filter((a) => a.level === "red").length));
  await assertFits(leader, "the 大屏 at 1920×1080", { vertical: true });
  // The same screen on a laptop: no scrolling either.
  await leader.setViewportSize({ width: 1366, height: 768 });
  await leader.waitForTimeout(400);
  await assertFits(leader, "the 大屏 at 1366×768", { vertical: true });
  assert.equal(await leader.$$eval(".tile", (ts) => ts.length), 40);
  const clipped = await leader.$$eval(".tile", (ts) => ts.filter((t) => {
    const r = t.getBoundingClientRect();
    return r.bottom > innerHeight || r.right > innerWidth;
  }).length);
  assert.equal(clipped, 0, "tiles fall off the laptop's screen");
  await leader.screenshot({ path: join(SHOTS, "leader-1366.png") });
  await leader.setViewportSize({ width: 1920, height: 1080 });
  await leader.waitForTimeout(400);
  await leader.screenshot({ path: join(SHOTS, "leader-1920.png") });
});

const inspector1 = await newPage();
const inspector2 = await newPage({ width: 1366, height: 768 });
await step("two inspector sessions show the live queue", async () => {
  for (const page of [inspector1, inspector2]) {
    await logIn(page, "web-inspector");
    await page.waitForURL(/\/ui\/inspector$/);
    assert.deepEqual(await navOf(page), ["大屏", "督办台", "查询与绩效"]);
    await page.waitForSelector("#queue tr[data-alert]");
  }
  const live = await get("/api/v1/alerts?status=active&limit=500", inspectorToken);
  // One row per rule and subject, the highest level on top (SPEC §7, superseded levels folded).
  const top = new Map();
  const rank = { red: 0, yellow: 1, warning: 2 };
  for (const a of live.items) {
    const key = a.rule + "|" + a.region + "|" + JSON.stringify(a.subject);
    const b = top.get(key);
    if (!b || rank[a.level] < rank[b.level] || (a.level === b.level && a.fired_at > b.fired_at)) top.set(key, a);
  }
  const rows = await inspector1.$$eval("#queue tr[data-alert]", (rs) => rs.map((r) => r.dataset.alert).sort());
  assert.deepEqual(rows, [...top.values()].map((a) => a.alert_id).sort(), "the queue is the API's active alerts, folded");
  assert.ok(rows.length < live.items.length, "the September cases' lower levels are folded");
  // Until an alert is chosen, the right half summarises the queue.
  assert.match(await inspector1.textContent("#summary"), /红牌/);
  const reds = live.items.filter((a) => a.level === "red").length;
  assert.equal(await inspector1.$eval("#summary .sum-tile.red b", (b) => Number(b.textContent)), reds);
  // A folded row opens to show what it supersedes.
  const red = [...top.values()].find((a) => a.level === "red" && CASES.includes(a.case_id));
  await inspector1.click(`#queue tr[data-alert="${red.alert_id}"] button.fold`);
  await inspector1.waitForSelector("#queue tr.folded");
  assert.equal(await inspector1.$$eval("#queue tr.folded", (rs) => rs.length), 2, "its yellow and warning");
  assert.match(await inspector1.textContent(`#queue tr[data-alert="${red.alert_id}"] td:nth-child(3)`), new RegExp(red.case_id + "$"),
    "the full case id");
});

let complaintAlert;
await step(`a complaint sent over HTTP is on the 大屏 and both queues within ${LIVE_BUDGET_MS} ms, without a reload`, async () => {
  for (const p of [leader, inspector1, inspector2]) await p.evaluate(() => { window.__stayed = true; });
  const before = new Set(await leader.$$eval("#ticker li[data-alert]", (ls) => ls.map((l) => l.dataset.alert)));
  const badge = () => leader.$eval('.tile[data-window="PJ-ZWFW-W003"]', (t) => Number((t.querySelector(".alerts")?.textContent || "0").replace(/\D/g, "")));
  const openBefore = await badge();
  const sent = Date.now();
  await send([event("complaint.filed", "2026-11-20T10:31:00", {
    window_id: "PJ-ZWFW-W003", staff_id: "PJ-ZWFW-S003", complaint_id: "WEB-COMPLAINT-1", category: "attitude",
  })], publisher);
  const handle = await leader.waitForFunction((known) => {
    const li = [...document.querySelectorAll("#ticker li[data-alert]")].find((l) => !known.includes(l.dataset.alert));
    return li && li.dataset.alert;
  }, [...before], { timeout: LIVE_BUDGET_MS * 3 });
  const onLeader = Date.now() - sent;
  complaintAlert = await handle.jsonValue();
  const onInspectors = await Promise.all([inspector1, inspector2].map(async (p) => {
    await p.waitForSelector(`#queue tr[data-alert="${complaintAlert}"]`, { timeout: LIVE_BUDGET_MS * 3 });
    return Date.now() - sent;
  }));
  console.log(`     live: 大屏 ${onLeader} ms, inspectors ${onInspectors.join(" / ")} ms after the POST`);
  assert.ok(onLeader <= LIVE_BUDGET_MS && onInspectors.every((t) => t <= LIVE_BUDGET_MS), "too slow");
  assert.match(await leader.textContent(`#ticker li[data-alert="${complaintAlert}"]`), /投诉/);
  // The window's tile counts the new alert (its tile alone is redrawn).
  await leader.waitForFunction((n) => {
    const b = document.querySelector('.tile[data-window="PJ-ZWFW-W003"] .alerts');
    return b && Number(b.textContent.replace(/\D/g, "")) === n;
  }, openBefore + 1, { timeout: LIVE_BUDGET_MS });
  for (const p of [leader, inspector1, inspector2]) assert.equal(await p.evaluate(() => window.__stayed), true, "the page reloaded");
  await leader.screenshot({ path: join(SHOTS, "leader.png") });
});

await step("an inspector's 签收 and 督办 in one session appear in the other", async () => {
  await inspector2.click(`#queue tr[data-alert="${complaintAlert}"]`);
  await inspector2.waitForSelector("#detail-title");
  await inspector1.click(`#queue tr[data-alert="${complaintAlert}"]`);
  await inspector1.waitForSelector('button[data-action="acknowledge"]:not([disabled])');
  await inspector1.click('button[data-action="acknowledge"]');
  await inspector1.click("#act-submit");
  await inspector1.waitForFunction(() => /已签收/.test(document.querySelector("#detail-title").textContent));
  await inspector1.click('button[data-action="supervise"]');
  // A 督办 needs a note: the dialog says so rather than sending an empty one.
  await inspector1.click("#act-submit");
  assert.equal(await inspector1.$eval("#act-note", (n) => n.validity.valueMissing), true);
  await inspector1.fill("#act-note", "请于期限内核实投诉并回告处理结果");
  await inspector1.click("#act-submit");
  await inspector1.waitForFunction(() => /督办中/.test(document.querySelector("#detail-title").textContent));
  const acted = Date.now();
  await inspector2.waitForSelector(`#queue tr[data-alert="${complaintAlert}"][data-status="supervising"]`, { timeout: LIVE_BUDGET_MS });
  await inspector2.waitForSelector('#trail li[data-action="supervise"]', { timeout: LIVE_BUDGET_MS });
  console.log(`     the other session showed the 督办 ${Date.now() - acted} ms later`);
  assert.match(await inspector2.textContent("#trail"), /请于期限内核实投诉/);
  // Who acted, by display name and unit, not by login.
  const trail = await inspector2.textContent("#trail");
  assert.match(trail, /平江县效能监察室（平江县政务服务中心）/);
  assert.ok(!trail.includes("web-inspector"), trail);
  // The reply deadline counts down (three days ahead: green).
  await inspector2.waitForSelector('#queue tr[data-status="supervising"] td.countdown.ok');
  assert.match(await inspector2.textContent("#detail-countdown"), /^剩 [23] 天/);
  // 回告 is now possible, 签收 no longer.
  assert.equal(await inspector2.$eval('button[data-action="reply"]', (b) => b.disabled), false);
  assert.equal(await inspector2.$eval('button[data-action="acknowledge"]', (b) => b.disabled), true);
  await inspector2.screenshot({ path: join(SHOTS, "inspector-laptop.png") });
});

await step("a red card's detail draws its deadline evidence: start, pause, extension, deadline", async () => {
  const red = await get(`/api/v1/alerts?rule=case.overdue&level=red&case=${CASES[0]}`, inspectorToken);
  assert.equal(red.items.length, 1);
  await inspector1.goto(`${BASE}/ui/inspector?alert=${red.items[0].alert_id}`);
  await inspector1.waitForSelector("#evidence-timeline svg");
  for (const cls of ["start", "deadline", "supervision", "extension"]) {
    assert.ok(await inspector1.$(`#evidence-timeline .mark.${cls}`), `no ${cls} mark`);
  }
  assert.ok(await inspector1.$("#evidence-timeline rect.pause"), "no pause drawn");
  assert.match(await inspector1.textContent("#detail"), /等待档案调取|挂起/);
  await inspector1.screenshot({ path: join(SHOTS, "inspector.png") });
});

// ---- the alert follows its case (SPEC §7 v1.1) ----
// Working days before `day` (Mon–Fri; November 2026 has no holiday): the N-th working day
// after the returned date is `day`.
function workingDaysBefore(day, n) {
  const d = new Date(day + "T12:00:00+08:00");
  while (n > 0) {
    d.setUTCDate(d.getUTCDate() - 1);
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) n -= 1;
  }
  return d.toISOString().slice(0, 10);
}
const days = Number(item[6]);
assert.ok(item[7] === "working" && days >= 1, `item ${item[0]}: a promise in working days`);
const ON_TIME = "WEB-CASE-ON-TIME";
const LATE = "WEB-CASE-LATE";
const desk = { window_id: "PJ-ZWFW-W002", staff_id: "PJ-ZWFW-S002", department: item[2] };
const caseAlerts = async (c) => (await get(`/api/v1/alerts?case=${c}&limit=50`, inspectorToken)).items;

await step("a warning clears live from two open 督办台 when its case completes on time", async () => {
  // Last day of the promise = 11-20 (today): the 预警 fired at 00:00; the late case's last
  // day was 11-17, so its 黄牌 fired at 11-18 00:00.
  await send([
    event("case.accepted", `${workingDaysBefore("2026-11-17", days)}T09:00:00`, { case_id: LATE, item_code: item[0], channel: "hall", ...desk }),
    event("case.accepted", `${workingDaysBefore("2026-11-20", days)}T09:30:00`, { case_id: ON_TIME, item_code: item[0], channel: "hall", ...desk }),
    event("case.stage", "2026-11-20T10:33:00", { case_id: ON_TIME, stage: "undertake", result: "agree", ...desk }),
  ], publisher);
  let warning;
  for (let i = 0; !warning; i++) {
    warning = (await caseAlerts(ON_TIME)).find((a) => a.rule === "case.overdue" && a.level === "warning");
    assert.ok(i < 40, "the warning did not fire");
    if (!warning) await new Promise((r) => setTimeout(r, 250));
  }
  for (const p of [inspector1, inspector2]) {
    await p.goto(`${BASE}/ui/inspector?alert=${warning.alert_id}`);
    await p.waitForSelector(`#queue tr[data-alert="${warning.alert_id}"]`);
    await p.waitForFunction(() => /待签收/.test(document.querySelector("#detail-title")?.textContent || ""));
    await p.evaluate(() => { window.__stayed = true; });
  }
  const sent = Date.now();
  await send([event("case.completed", "2026-11-20T10:40:00", { case_id: ON_TIME, result: "approved", ...desk })], publisher);
  for (const p of [inspector1, inspector2]) {
    await p.waitForFunction((id) => !document.querySelector(`#queue tr[data-alert="${id}"]`)
      && /已自动解除/.test(document.querySelector("#detail-title").textContent), warning.alert_id, { timeout: LIVE_BUDGET_MS });
    await p.waitForSelector('#trail li[data-action="clear"]', { timeout: LIVE_BUDGET_MS });
    assert.match(await p.textContent('#trail li[data-action="clear"]'), /系统自动解除.*11-20 10:40.*办结/);
    assert.match(await p.textContent("#detail"), /在承诺时限内/);
    assert.equal(await p.evaluate(() => window.__stayed), true, "the page reloaded");
  }
  console.log(`     cleared on both 督办台 ${Date.now() - sent} ms after the completion`);
  await inspector2.screenshot({ path: join(SHOTS, "inspector-cleared-laptop.png") });
});

await step("a late-completed 黄牌 shows its 办结 mark, and the overdue band ends there", async () => {
  await send([event("case.completed", "2026-11-20T10:41:00", { case_id: LATE, result: "approved", ...desk })], publisher);
  // Last day 11-17; completed 11-20: 11-18, 11-19, 11-20 → 3 working days late.
  let yellow;
  for (let i = 0; !yellow; i++) {
    yellow = (await caseAlerts(LATE)).find((a) => a.rule === "case.overdue" && a.level === "yellow"
      && a.evidence.subject_state?.status === "completed");
    assert.ok(i < 40, "the yellow card was not revised with the completion");
    if (!yellow) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(yellow.status, "open", "a card stays on record when the case is completed late");
  await inspector1.goto(`${BASE}/ui/inspector?alert=${yellow.alert_id}`);
  // A vertical line has no width: attached, not "visible" to playwright.
  await inspector1.waitForSelector("#evidence-timeline .mark.closed", { state: "attached" });
  const message = await inspector1.textContent("#detail .message");
  assert.match(message, /已超期 3 个工作日于 11-20 办结/);
  assert.ok(!message.includes("尚未办结"), message);
  assert.match(await inspector1.textContent("#evidence-timeline"), /办结（超期 3 个工作日）/);
  assert.ok(!(await inspector1.$("#evidence-timeline .mark.now")), "no 当前 mark on a finished case");
  const band = await inspector1.$eval("#evidence-timeline rect.late", (r) => Number(r.getAttribute("x")) + Number(r.getAttribute("width")));
  const mark = await inspector1.$eval("#evidence-timeline line.mark.closed", (l) => Number(l.getAttribute("x1")));
  assert.ok(Math.abs(band - mark) < 1, `the overdue band ends at 办结 (${band} vs ${mark})`);
  assert.match(await inspector1.textContent("#evidence-fields"), /已办结，2026-11-20 10:41，准予，超期 3 个工作日/);
  // One row for the case: the warning is folded under the yellow.
  const rows = await inspector1.$$eval("#queue tr[data-alert]", (rs) => rs.map((r) => r.dataset.alert));
  const all = await caseAlerts(LATE);
  const lower = all.find((a) => a.rule === "case.overdue" && a.level === "warning");
  assert.ok(lower && !rows.includes(lower.alert_id) && rows.includes(yellow.alert_id), "the warning is folded under the yellow");
  await inspector1.screenshot({ path: join(SHOTS, "inspector-late-completed.png") });
});

await step("no visible text in the detail panes is an ASCII identifier", async () => {
  const CODE = /\b(?:[a-z]+_[a-z_]+|hall|online|mobile|office|agree|disagree|undertake|review|approve|approved|denied|promised|instant|warning|yellow|red|open|true|false|null|attitude|efficiency|integrity|stages|cause|case)\b/;
  const live = (await get("/api/v1/alerts?limit=500", inspectorToken)).items;
  // One alert of every rule on record, plus the cleared warning and the revised card.
  const byRule = new Map();
  for (const a of live) if (!byRule.has(a.rule + a.level)) byRule.set(a.rule + a.level, a);
  for (const c of [ON_TIME, LATE]) for (const a of await caseAlerts(c)) byRule.set(a.alert_id, a);
  assert.ok(byRule.size >= 6, `too few kinds of alert to look at: ${[...byRule.keys()]}`);
  for (const a of byRule.values()) {
    await inspector2.goto(`${BASE}/ui/inspector?alert=${a.alert_id}`);
    await inspector2.waitForSelector("#detail-title");
    await inspector2.waitForSelector("#trail");
    const text = await inspector2.$eval("#detail", (d) => d.innerText);
    const hit = CODE.exec(text);
    assert.ok(!hit, `${a.rule} ${a.level}: "${hit?.[0]}" in\n${text}`);
  }
  console.log(`     ${byRule.size} detail panes read`);
});

await step("a 督办 the server refuses shows its reason in Chinese; no page scrolls sideways", async () => {
  const red = await get(`/api/v1/alerts?rule=case.overdue&level=yellow&status=open&limit=1`, inspectorToken);
  const target = red.items[0] || (await get("/api/v1/alerts?status=open&limit=1", inspectorToken)).items[0];
  await inspector1.goto(`${BASE}/ui/inspector?alert=${target.alert_id}`);
  await inspector1.waitForSelector('button[data-action="supervise"]:not([disabled])');
  await inspector1.click('button[data-action="supervise"]');
  await inspector1.fill("#act-note", "请核实并回告");
  // A reply deadline already past (the data's clock is 2026-11-20): the API refuses it.
  await inspector1.fill("#act-deadline", "2026-11-01T09:00");
  await inspector1.click("#act-submit");
  await inspector1.waitForSelector("#act-error:not(.hidden)");
  const said = await inspector1.textContent("#act-error");
  assert.match(said, /回告期限.*已经过去/, said);
  assert.doesNotMatch(said, /reply_deadline|not in the future/);
  await inspector1.screenshot({ path: join(SHOTS, "inspector-refused.png") });
  await inspector1.keyboard.press("Escape");
  for (const [p, size] of [[inspector1, "1920×1080"], [inspector2, "1366×768"]]) await assertFits(p, `the 督办台 at ${size}`);
});

await step("the auditor queries September–October red cards, gets exactly the three cases, and downloads them as CSV", async () => {
  const auditor = await newPage();
  await logIn(auditor, "web-auditor");
  await auditor.waitForURL(/\/ui\/auditor$/);
  assert.deepEqual(await navOf(auditor), ["查询与绩效"]);
  await auditor.goto(BASE + "/ui/inspector");
  await auditor.waitForURL(/\/ui\/auditor$/);
  await auditor.waitForSelector("#perf-rows tr[data-key]");
  await auditor.fill('input[name="from"]', "2026-09-01");
  await auditor.fill('input[name="to"]', "2026-10-31");
  await auditor.selectOption('select[name="rule"]', "case.overdue");
  await auditor.selectOption('select[name="level"]', "red");
  await auditor.click("#search");
  await auditor.waitForFunction(() => /2026-09-01 至 2026-10-31/.test(document.querySelector("#results-note").textContent)
    && document.querySelectorAll("#results tr[data-alert]").length > 0);
  const cases = await auditor.$$eval("#results tr[data-alert] td:nth-child(8)", (tds) => tds.map((t) => t.textContent).sort());
  assert.deepEqual(cases, CASES);
  const [download] = await Promise.all([auditor.waitForEvent("download"), auditor.click("#export")]);
  assert.match(download.suggestedFilename(), /^告警记录_2026-09-01_2026-10-31\.csv$/);
  const csv = readFileSync(await download.path(), "utf8");
  assert.ok(csv.startsWith("\ufeff告警编号"), "CSV starts with a BOM and the Chinese header");
  const lines = csv.trim().split("\r\n");
  assert.equal(lines.length, 4, csv);
  for (const c of CASES) assert.ok(lines.some((l) => l.includes(c) && l.includes(",红牌,")), `${c} missing from the CSV`);
  // Names, not codes: apart from the code columns (编号, 编码, 工号, 区划), no cell is an ASCII
  // identifier (a rule name, a level, a status, a department code); times are local minutes.
  const header = lines[0].replace("\ufeff", "").split(",");
  const codeColumn = (h) => /编号|编码|工号|区划/.test(h);
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    assert.equal(cells.length, header.length, line);
    header.forEach((h, i) => {
      if (!codeColumn(h)) assert.doesNotMatch(cells[i], /^[A-Za-z_][A-Za-z0-9_.:-]*$/, `${h}: ${cells[i]}`);
    });
    const cell = (name) => cells[header.indexOf(name)];
    assert.match(cell("触发时间"), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
    assert.equal(cell("规则"), "办件超时");
    assert.equal(cell("中心"), "平江县政务服务中心");
    assert.equal(cell("窗口"), "1号窗");
    assert.ok(cell("部门") && cell("工作人员") && cell("事项"), line);
    assert.doesNotMatch(cell("说明"), /T\d{2}:\d{2}:\d{2}/, "RFC 3339 times in the message");
  }
  // The form checks itself before sending: an end before the start is refused in Chinese,
  // and what is shown stays the last query's.
  const rowsBefore = await auditor.$$eval("#results tr[data-alert]", (rs) => rs.length);
  await auditor.fill('input[name="to"]', "2026-08-01");
  await auditor.click("#search");
  await auditor.waitForSelector("#form-error:not(.hidden)");
  assert.match(await auditor.textContent("#form-error"), /结束日期 2026-08-01 早于起始日期 2026-09-01/);
  assert.equal(await auditor.$$eval("#results tr[data-alert]", (rs) => rs.length), rowsBefore);
  assert.match(await auditor.textContent("#results-note"), /2026-09-01 至 2026-10-31/);
  // A query the server refuses (a region outside the jurisdiction): its Chinese message, and
  // the form goes back to the query the page shows.
  await auditor.fill('input[name="to"]', "2026-10-31");
  await auditor.evaluate(() => {
    const s = document.querySelector('select[name="region"]');
    s.append(new Option("430602", "430602"));
    s.value = "430602";
  });
  await auditor.click("#search");
  await auditor.waitForFunction(() => /不在本账号的管辖范围/.test(document.querySelector("#form-error").textContent));
  assert.equal(await auditor.$eval('select[name="region"]', (s) => s.value), "");
  assert.equal(await auditor.$$eval("#results tr[data-alert]", (rs) => rs.length), rowsBefore);
  assert.match(await auditor.textContent("#results-note"), /2026-09-01 至 2026-10-31/);
  await auditor.screenshot({ path: join(SHOTS, "auditor-error.png") });
  // Back to this month: the 绩效 table ranks every department with cases; the charts are drawn.
  await auditor.click("#clear");
  await auditor.waitForFunction(() => /2026-11-01 至 2026-11-30/.test(document.querySelector("#results-note").textContent));
  const perf = await get("/api/v1/performance?by=department&from=2026-11-01&to=2026-11-30", leaderToken);
  await auditor.waitForFunction((n) => document.querySelectorAll("#perf-rows tr[data-key]").length === n, perf.rows.length);
  assert.ok(await auditor.$("#chart-month svg rect") && await auditor.$("#chart-dept svg"));
  // 绩效 on its 100-point scale, the bonus in its own column, 590 explained where it failed.
  const scores = await auditor.$$eval("#perf-rows tr[data-key] td:nth-child(16)", (tds) => tds.map((t) => Number(t.textContent)));
  assert.ok(scores.every((x) => x >= 0 && x <= 100), `scores ${scores}`);
  for (const r of perf.rows.filter((x) => !x.check_590.pass)) {
    const why = await auditor.textContent(`#perf-rows tr[data-key="${r.key}"] td.c590`);
    assert.match(why, /未达标.*(按时办结率|现场办结率|有效投诉)/, why);
  }
  // Cleared warnings can be asked for, and say so (not 有效).
  await auditor.selectOption('select[name="status"]', "cleared");
  await auditor.click("#search");
  await auditor.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#results tr[data-alert]")];
    return rows.length > 0 && rows.every((r) => r.lastElementChild.textContent === "已自动解除");
  });
  const cleared = await auditor.$$eval("#results tr[data-alert] td:nth-child(8)", (tds) => tds.map((t) => t.textContent));
  assert.ok(cleared.includes(ON_TIME), `the warning cleared on time is listed: ${cleared}`);
  await auditor.selectOption('select[name="status"]', "");
  await auditor.click("#search");
  await auditor.waitForFunction(() => [...document.querySelectorAll("#results tr[data-alert]")]
    .some((r) => r.lastElementChild.textContent !== "已自动解除"));
  await assertFits(auditor, "查询与绩效 at 1920×1080");
  await auditor.screenshot({ path: join(SHOTS, "auditor.png"), fullPage: true });
  await auditor.setViewportSize({ width: 1366, height: 768 });
  await auditor.waitForTimeout(300);
  await assertFits(auditor, "查询与绩效 at 1366×768");
  await auditor.screenshot({ path: join(SHOTS, "auditor-1366.png") });
});

await step("another county's leader sees only their own centre", async () => {
  const yy = await newPage({ width: 1366, height: 768 });
  await logIn(yy, "web-leader-yy");
  await yy.waitForURL(/\/ui\/leader$/);
  await send([JSON.stringify({
    event_id: "yy-2", kind: "complaint.filed", occurred_at: at("2026-11-20T10:32:00"), reported_at: at("2026-11-20T10:32:01"),
    center_id: "YY-ZWFW", region: "430602", window_id: "YY-ZWFW-W001", complaint_id: "YY-COMPLAINT-1", category: "efficiency",
  })], admin);
  await yy.waitForSelector("#ticker li[data-alert]");
  assert.deepEqual(await yy.$$eval(".tile", (ts) => ts.map((t) => t.dataset.window)), ["YY-ZWFW-W001"]);
  const body = await yy.textContent("body");
  assert.ok(!body.includes("PJ-ZWFW") && !body.includes("平江"), "平江's data is on another county's screen");
  // …and the 平江 screen never shows the other county's complaint.
  await leader.waitForTimeout(500);
  assert.ok(!(await leader.textContent("#ticker")).includes("YY-"), "another county's alert reached 平江");
  await yy.screenshot({ path: join(SHOTS, "leader-other-county-laptop.png") });
});

await step("a province admin sees both counties and switches the 大屏 to one centre; the 督办台 is read-only", async () => {
  const page = await newPage();
  await logIn(page, "web-admin");
  await page.waitForURL(/\/ui\/leader$/);
  assert.deepEqual(await navOf(page), ["大屏", "督办台", "查询与绩效", "数据源"]);
  // Several centres: the rollup first, the two centres side by side.
  await page.waitForFunction(() => document.querySelectorAll("#rollup-table tr[data-center]").length === 2);
  assert.equal(await page.$$eval(".tile", (ts) => ts.length), 0);
  const options = await page.$$eval("#center option", (os) => os.map((o) => o.textContent));
  assert.deepEqual(options, ["全部（2 个中心）", "平江县政务服务中心", "岳阳楼区政务服务中心"]);
  await page.selectOption("#center", "YY-ZWFW");
  await page.waitForFunction(() => document.querySelectorAll(".tile").length === 1);
  assert.equal(await page.$eval(".tile", (t) => t.dataset.window), "YY-ZWFW-W001");
  await page.screenshot({ path: join(SHOTS, "leader-switched.png") });
  await page.goto(`${BASE}/ui/inspector?alert=${complaintAlert}`);
  await page.waitForSelector('#detail button[data-action="resolve"]');
  assert.equal(await page.$$eval("#detail .actions button", (bs) => bs.every((b) => b.disabled)), true);
});

await step("a city leader first sees the rollup: the two counties ranked side by side, and drills down", async () => {
  const city = await login("web-leader-city");
  // 岳阳楼区 finishes a case of its own today (a 即办件 of the shared catalogue), so both counties
  // have figures to rank.
  const yyCase = { center_id: "YY-ZWFW", region: "430602", case_id: "YY-CASE-1", window_id: "YY-ZWFW-W001",
    staff_id: "YY-ZWFW-S001", department: "D01" };
  await send([
    JSON.stringify({ event_id: "yy-3", kind: "case.accepted", occurred_at: at("2026-11-20T10:33:00"), reported_at: at("2026-11-20T10:33:01"),
      ...yyCase, item_code: "D01-006", channel: "hall" }),
    JSON.stringify({ event_id: "yy-4", kind: "case.completed", occurred_at: at("2026-11-20T10:40:00"), reported_at: at("2026-11-20T10:40:01"),
      ...yyCase, result: "approved" }),
  ], admin);
  for (let i = 0; ; i++) {
    const p = await get("/api/v1/performance?by=center&month=2026-11", city);
    if (p.rows.find((r) => r.key === "YY-ZWFW")?.completed === 1) break;
    assert.ok(i < 40, "the 岳阳楼区 case was not counted within 10 s");
    await new Promise((r) => setTimeout(r, 250));
  }
  for (const [size, viewport] of [["1920", { width: 1920, height: 1080 }], ["1366", { width: 1366, height: 768 }]]) {
    const page = await newPage(viewport);
    await logIn(page, "web-leader-city");
    await page.waitForURL(/\/ui\/leader$/);
    await page.waitForFunction(() => document.querySelectorAll("#rollup-table tr[data-center]").length === 2);
    // Ranked as the API ranks the centres this month.
    const month = await get("/api/v1/performance?by=center&month=2026-11", city);
    const shown = await page.$$eval("#rollup-table tr[data-center]", (rs) => rs.map((r) => r.dataset.center));
    const ranked = month.rows.filter((r) => r.completed > 0).map((r) => r.key);
    for (const c of ["PJ-ZWFW", "YY-ZWFW"]) if (!ranked.includes(c)) ranked.push(c);
    assert.deepEqual(shown, ranked);
    // Both counties finished cases this month: both ranked, places 1 and 2.
    assert.deepEqual(await page.$$eval("#rollup-table tr[data-center] td:first-child", (tds) => tds.map((t) => t.textContent)), ["1", "2"]);
    const text = await page.textContent("#rollup-table");
    assert.ok(text.includes("平江县政务服务中心") && text.includes("岳阳楼区政务服务中心"), text);
    const today = await get("/api/v1/performance?by=center&from=2026-11-20&to=2026-11-20", city);
    const pj = today.rows.find((r) => r.key === "PJ-ZWFW");
    assert.equal(await page.$eval('#rollup-table tr[data-center="PJ-ZWFW"] td:nth-child(3)', (td) => td.textContent), String(pj.accepted));
    await page.waitForSelector("#chart-ontime canvas");
    await assertFits(page, `the rollup at ${size}`, { vertical: true });
    await page.screenshot({ path: join(SHOTS, `leader-rollup-${size}.png`) });
    // Drill down: the centre's own board, and back.
    await page.click('#rollup-table tr[data-center="PJ-ZWFW"]');
    await page.waitForFunction(() => document.querySelectorAll(".tile").length === 40);
    assert.match(page.url(), /\?center=PJ-ZWFW$/);
    await assertFits(page, `a drilled-down board at ${size}`, { vertical: true });
    await page.click("#back");
    await page.waitForFunction(() => document.querySelectorAll("#rollup-table tr[data-center]").length === 2);
    await page.context().close();
    pages.splice(pages.indexOf(page), 1);
  }
});

await step("the 大屏 on a laptop", async () => {
  const laptop = await newPage({ width: 1366, height: 768 });
  await logIn(laptop, "web-leader");
  await laptop.waitForFunction(() => document.querySelectorAll(".tile").length === 40);
  await laptop.waitForTimeout(500);
  await assertFits(laptop, "the 大屏 at 1366×768", { vertical: true });
  await laptop.screenshot({ path: join(SHOTS, "leader-laptop.png") });
  // The network goes: no socket closes, but the heartbeats stop; within 40 s the screen dims
  // under a banner, and it comes back with the feed.
  await laptop.context().setOffline(true);
  await laptop.waitForSelector("#offline:not(.hidden)", { timeout: 60000 });
  assert.match(await laptop.textContent("#offline"), /实时连接已中断/);
  assert.equal(await laptop.evaluate(() => document.body.classList.contains("offline")), true);
  await laptop.screenshot({ path: join(SHOTS, "leader-offline-1366.png") });
  await laptop.context().setOffline(false);
  await laptop.waitForSelector("#offline.hidden", { state: "attached", timeout: 20000 });
  assert.equal(await laptop.evaluate(() => document.body.classList.contains("offline")), false);
});

await step("the dashboards run under their Content-Security-Policy without a single refusal", async () => {
  assert.deepEqual(cspViolations, []);
});

await browser.close();
console.log(`screenshots in ${SHOTS}`);
