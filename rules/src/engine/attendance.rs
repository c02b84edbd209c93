//! The attendance of one centre's windows (opened, paused, closed; who signed in where), kept as
//! a log so that `window.unstaffed` (空岗) follows the facts whatever order they arrived in.
//!
//! **Invariant: the 空岗 episodes on record are those the attendance log gives in time order.**
//! Events that arrive in order go through the window board as they always did and are appended
//! here. One that arrives older than the latest logged one (a sign-out reported after the same
//! person's next sign-in, a batch retried after later ones) is inserted where it belongs and
//! the centre's attendance is replayed from the log's base: the board's state is replaced by
//! the replay's, and the episodes that fired are compared with those the replay gives — a
//! missing one fires at its own deadline, one that no longer holds is retracted. The log keeps
//! `closed_case_retention_days`; older events are folded into the base state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Kind;

use super::case::T32;
use super::table::{Sym, NONE};
use super::windows::{Cause, Mode};

/// One attendance event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Att {
    pub t: T32,
    pub event_id: Box<str>,
    pub kind: Kind,
    pub window: Sym,
    /// [`NONE`] for window events.
    pub staff: Sym,
}

impl Att {
    fn key(&self) -> (T32, &str) {
        (self.t, &self.event_id)
    }
}

/// A window's attendance state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinAtt {
    pub mode: Mode,
    pub mode_at: T32,
    pub opened_at: T32,
    pub staff: Vec<Sym>,
    /// An unstaffed episode in progress: since, and what started it.
    pub episode: Option<(T32, Cause)>,
}

impl Default for WinAtt {
    fn default() -> Self {
        WinAtt {
            mode: Mode::Closed,
            mode_at: super::case::NEVER,
            opened_at: super::case::NEVER,
            staff: Vec::new(),
            episode: None,
        }
    }
}

/// The attendance state of a centre: its windows and where each person is signed in
/// (with the time of their latest sign-in or sign-out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub windows: BTreeMap<Sym, WinAtt>,
    pub staff: BTreeMap<Sym, (Sym, T32)>,
}

/// An episode that lasted until its deadline: it fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub window: Sym,
    pub since: T32,
    pub at: T32,
    pub cause: Cause,
}

impl State {
    /// Apply one event in time order; `deadline` gives an episode's deadline from its start
    /// ([`super::case::NEVER`]: the rule is off), and episodes that end at or after theirs are
    /// pushed to `fired`.
    pub fn step(&mut self, e: &Att, deadline: &impl Fn(T32) -> T32, fired: &mut Vec<Fired>) {
        let w = e.window;
        match e.kind {
            Kind::WindowOpened | Kind::WindowPaused | Kind::WindowClosed => {
                let win = self.windows.entry(w).or_default();
                match e.kind {
                    Kind::WindowOpened => {
                        if win.mode != Mode::Open {
                            win.mode = Mode::Open;
                            win.opened_at = e.t;
                        }
                    }
                    Kind::WindowPaused if win.mode == Mode::Closed => return,
                    Kind::WindowPaused => win.mode = Mode::Paused,
                    _ => {
                        win.mode = Mode::Closed;
                        for s in win.staff.drain(..) {
                            let at = self.staff.entry(s).or_insert((NONE, e.t));
                            *at = (NONE, at.1.max(e.t));
                        }
                    }
                }
                win.mode_at = e.t;
                self.changed(w, e, NONE, deadline, fired);
            }
            Kind::StaffSignedIn => {
                let prev = self.staff.get(&e.staff).map_or(NONE, |p| p.0);
                self.staff.insert(e.staff, (w, e.t));
                if prev == w {
                    return;
                }
                if prev != NONE {
                    if let Some(p) = self.windows.get_mut(&prev) {
                        p.staff.retain(|&x| x != e.staff);
                    }
                    self.changed(prev, e, e.staff, deadline, fired);
                }
                self.windows.entry(w).or_default().staff.push(e.staff);
                self.changed(w, e, e.staff, deadline, fired);
            }
            Kind::StaffSignedOut => {
                if self.staff.get(&e.staff).map(|p| p.0) != Some(w) {
                    return;
                }
                self.staff.insert(e.staff, (NONE, e.t));
                if let Some(win) = self.windows.get_mut(&w) {
                    win.staff.retain(|&x| x != e.staff);
                }
                self.changed(w, e, e.staff, deadline, fired);
            }
            _ => {}
        }
    }

    /// Start or end window `w`'s episode after `e` changed it.
    fn changed(
        &mut self,
        w: Sym,
        e: &Att,
        staff: Sym,
        deadline: &impl Fn(T32) -> T32,
        fired: &mut Vec<Fired>,
    ) {
        let win = self.windows.entry(w).or_default();
        let unstaffed = win.mode == Mode::Open && win.staff.is_empty();
        match (&win.episode, unstaffed) {
            (None, true) => {
                let cause = Cause {
                    kind: e.kind,
                    event_id: e.event_id.clone(),
                    at: e.t,
                    staff,
                };
                win.episode = Some((e.t.max(win.opened_at), cause));
            }
            (Some((since, cause)), false) => {
                let at = deadline(*since);
                if at != super::case::NEVER && at <= e.t {
                    fired.push(Fired {
                        window: w,
                        since: *since,
                        at,
                        cause: cause.clone(),
                    });
                }
                win.episode = None;
            }
            _ => {}
        }
    }
}

/// A centre's attendance log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Log {
    /// The state before the first event kept.
    pub base: State,
    /// Sorted by (`t`, event id).
    pub events: Vec<Att>,
}

impl Log {
    /// The latest event's time.
    pub fn latest(&self) -> Option<T32> {
        self.events.last().map(|e| e.t)
    }

    /// Add an event where it belongs; false if it is already there.
    pub fn insert(&mut self, e: Att) -> bool {
        match self.events.binary_search_by(|x| x.key().cmp(&e.key())) {
            Ok(_) => false,
            Err(pos) => {
                self.events.insert(pos, e);
                true
            }
        }
    }

    /// Replay the log from its base: the end state, and every episode that fired by `now`
    /// (those still open at the end fire if their deadline is at or before `now`).
    pub fn replay(&self, now: T32, deadline: &impl Fn(T32) -> T32) -> (State, Vec<Fired>) {
        let mut state = self.base.clone();
        let mut fired = Vec::new();
        for e in &self.events {
            state.step(e, deadline, &mut fired);
        }
        for (&w, win) in &state.windows {
            if let Some((since, cause)) = &win.episode {
                let at = deadline(*since);
                if at != super::case::NEVER && at <= now {
                    fired.push(Fired {
                        window: w,
                        since: *since,
                        at,
                        cause: cause.clone(),
                    });
                }
            }
        }
        (state, fired)
    }

    /// Fold the events before `floor` into the base.
    pub fn forget_before(&mut self, floor: T32, deadline: &impl Fn(T32) -> T32) {
        let old = self.events.partition_point(|e| e.t < floor);
        let mut sink = Vec::new();
        for e in self.events.drain(..old) {
            self.base.step(&e, deadline, &mut sink);
        }
    }
}
