//! Live window status (SPEC §6 "Windows (live status)"): what a dashboard shows for each service
//! window (窗口) — open or not, who is signed in, the queue waiting for it and today's figures.
//!
//! The engine keeps this board as it applies events (see `engine::windows` for how each field
//! is derived) and hands out [`WindowStatus`] values: all of them with
//! [`Engine::window_status`](crate::Engine::window_status), or only the windows that changed
//! with [`Engine::drain_window_status`](crate::Engine::drain_window_status). The type is plain
//! data, serialisable both ways, so the API can push it as JSON and a client can read it back.

use serde::{Deserialize, Serialize};

use crate::reference::Reference;
use crate::time::{Day, Instant};

wire_enum!(
    /// The state a window is shown in.
    WindowState {
        /// 关窗: not opened yet today, or closed (`window.closed`).
        Closed = "closed",
        /// Open, staffed, not serving anyone.
        OpenIdle = "open_idle",
        /// Open, staffed, and a ticket was called with no outcome recorded since (服务中).
        Serving = "serving",
        /// 暂停 (`window.paused`), until opened again.
        Paused = "paused",
        /// 空岗: open with nobody signed in.
        Unstaffed = "unstaffed",
    }
);

/// One window's live status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowStatus {
    /// Window id (windows.csv `window_id`).
    pub window_id: String,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code (for jurisdiction filtering).
    pub region: String,
    /// Department code, when known.
    pub department: Option<String>,
    /// Closed, open and idle, serving, paused or unstaffed.
    pub state: WindowState,
    /// 工号 of the staff signed in at this window, sorted.
    pub staff: Vec<String>,
    /// Queue tickets waiting for this window: issued for it, or for its department, or for the
    /// whole centre; not yet called anywhere.
    pub waiting: u32,
    /// Issue time of the longest-waiting of those tickets (the longest wait is now minus this).
    pub oldest_ticket_at: Option<Instant>,
    /// The calendar day (UTC+8) the daily counters are for: the engine clock's day.
    pub day: Day,
    /// `case.accepted` events at this window that day.
    pub accepted_today: u32,
    /// `case.completed` events at this window that day.
    pub completed_today: u32,
    /// Of those, cases completed on the calendar day they were accepted (当场办结) — the same
    /// definition as [`CaseFact::on_site`](crate::CaseFact::on_site). A completion whose
    /// acceptance is not known yet when it is applied is not counted.
    pub on_site_today: u32,
    /// Open cases whose `case.overdue` yellow card fired while the case was attributed to this
    /// window; a case leaves the count when it is completed or rejected (which is also what
    /// retracts a yellow card).
    pub overdue_cases: u32,
    /// Event time of the latest change (the day change counts, at 00:00).
    pub updated_at: Instant,
}

impl WindowStatus {
    /// A closed window with nothing waiting and nothing counted.
    pub fn closed(
        window_id: &str,
        center_id: &str,
        region: &str,
        department: Option<&str>,
        day: Day,
        updated_at: Instant,
    ) -> WindowStatus {
        WindowStatus {
            window_id: window_id.to_string(),
            center_id: center_id.to_string(),
            region: region.to_string(),
            department: department.map(str::to_string),
            state: WindowState::Closed,
            staff: Vec::new(),
            waiting: 0,
            oldest_ticket_at: None,
            day,
            accepted_today: 0,
            completed_today: 0,
            on_site_today: 0,
            overdue_cases: 0,
            updated_at,
        }
    }
}

/// A closed, empty status for every window of `windows.csv`, sorted by window id, so a dashboard
/// can list every window before any event; `updated_at` is the start of `day`.
pub fn reference_windows(reference: &Reference, day: Day) -> Vec<WindowStatus> {
    let mut out: Vec<WindowStatus> = reference
        .windows
        .values()
        .map(|w| {
            WindowStatus::closed(
                &w.window_id,
                &w.center_id,
                &w.region,
                Some(&w.department),
                day,
                day.start(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.window_id.cmp(&b.window_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_json() {
        let day = Day::parse("2026-03-02").unwrap();
        let mut s = WindowStatus::closed("W01", "PJ", "430626", Some("BDC"), day, day.start());
        s.state = WindowState::Serving;
        s.staff = vec!["S001".into()];
        s.oldest_ticket_at = Some(day.start().plus_secs(9 * 3600));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""state":"serving""#), "{json}");
        assert!(
            json.contains(r#""oldest_ticket_at":"2026-03-02T09:00:00+08:00""#),
            "{json}"
        );
        assert!(json.contains(r#""day":"2026-03-02""#), "{json}");
        let back: WindowStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn reference_windows_are_closed_and_sorted() {
        let r = Reference::parse(&crate::synth::reference_files()).unwrap();
        let day = Day::parse("2026-03-02").unwrap();
        let all = reference_windows(&r, day);
        assert_eq!(all.len(), r.windows.len());
        assert!(all.windows(2).all(|p| p[0].window_id < p[1].window_id));
        assert!(all
            .iter()
            .all(|w| w.state == WindowState::Closed && w.waiting == 0 && w.day == day));
    }
}
