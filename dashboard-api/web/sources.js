// 数据源: source health (SPEC §10) for admins and leaders — per source a sparkline of events
// per day, coloured live / late / silent, and the figures behind it. Read from
// GET /api/v1/sources; the status is the server's (docs/DASHBOARDS.md, "数据源").
import { api, el, fill, fmtAge, fmtTime, pct, requireRole, showError, topbar } from "/ui/assets/common.js";
import { SOURCE_STATUS, sourceLabel, sparkline } from "/ui/assets/charts.js";

requireRole(["leader", "admin"]);
topbar("/ui/sources");

const form = document.getElementById("query");
const rows = document.getElementById("rows");
const note = document.getElementById("note");
const formError = document.getElementById("form-error");

/// Seconds as the delay columns show them: 秒, 分钟, 小时 or 天.
function delay(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return seconds < 60 ? `${Math.max(0, seconds)} 秒` : fmtAge(seconds);
}

function deadLetters(d) {
  const entries = Object.entries(d || {});
  if (!entries.length) return "0";
  return entries.map(([reason, n]) => `${reason} ${n}`).join("，");
}

function row(s, days) {
  const status = SOURCE_STATUS[s.status] || s.status;
  const title = `${sourceLabel(s)} ${days[0]} 至 ${days[days.length - 1]} 每日事件 ${s.per_day.join("、")}`;
  return el("tr", { "data-source": s.source, "data-status": s.status },
    el("td", {}, el("div", { class: "source-name" }, sourceLabel(s)),
      el("div", { class: "muted" }, [s.source, s.vendor, s.transport].filter(Boolean).join(" · "))),
    el("td", {}, el("span", { class: "source-status " + s.status },
      status, s.silent_since ? el("small", {}, ` 自 ${fmtTime(s.silent_since)}`) : null)),
    el("td", { class: "spark-cell" }, sparkline(s.per_day, s.status, title)),
    el("td", { class: "num", "data-figure": "events" }, s.events),
    el("td", { class: "num", "data-figure": "p50" }, delay(s.delay_p50_seconds)),
    el("td", { class: "num", "data-figure": "p95" }, delay(s.delay_p95_seconds)),
    el("td", { class: "num", "data-figure": "after", title: `${s.after_completion} / ${s.case_events}` },
      s.after_completion_share === null ? "—" : pct(s.after_completion_share)),
    el("td", { class: "num", "data-figure": "corrections" }, s.corrections),
    el("td", { class: "num", "data-figure": "withdrawals" }, s.withdrawals),
    el("td", { "data-figure": "dead" }, deadLetters(s.dead_letters)),
    el("td", { "data-figure": "last" }, s.last_reported_at ? fmtTime(s.last_reported_at, true) : "从未报送"));
}

async function load() {
  const q = new URLSearchParams();
  for (const k of ["from", "to"]) if (form[k].value) q.set(k, form[k].value);
  formError.classList.add("hidden");
  try {
    const answer = await api("/api/v1/sources?" + q);
    form.from.value = answer.from;
    form.to.value = answer.to;
    const t = answer.thresholds;
    note.textContent = `${answer.from} 至 ${answer.to}，共 ${answer.sources.length} 个数据源；`
      + `办公时间 ${t.source_silence_minutes} 分钟无报送为静默，延迟 P95 超过 ${t.late_report_hours} 小时`
      + `或办结后报送超过 ${pct(t.not_live_share)} 为迟报`;
    if (!answer.sources.length) {
      fill(rows, el("tr", {}, el("td", { colspan: 11, class: "muted" }, "本辖区还没有数据源报送过事件，sources.csv 也没有列出。")));
      return;
    }
    fill(rows, answer.sources.map((s) => row(s, answer.days)));
  } catch (e) {
    formError.classList.remove("hidden");
    showError(formError, e);
  }
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
// A link may name the period: /ui/sources?from=2026-11-16&to=2026-11-20.
const linked = new URLSearchParams(location.search);
for (const k of ["from", "to"]) if (linked.get(k)) form[k].value = linked.get(k);
load();
setInterval(load, 60000);
