//! The jiancha rule engine: pure, deterministic, no I/O.
//!
//! Events go in through [`Engine::on_event`], time moves through [`Engine::advance_to`], alerts
//! come out. Nothing here reads a clock, a file or a socket: time is passed in, reference data is
//! handed over already read, so the same events always give the same alerts (SPEC §6) and a year
//! of history replays as a plain loop.

#[macro_use]
mod macros;

pub mod alert;
pub mod calendar;
pub mod engine;
pub mod event;
pub mod evidence;
pub mod fact;
pub mod perf;
pub mod policy;
pub mod reference;
pub mod synth;
pub mod time;
pub mod window;

pub use alert::{Alert, AlertStatus, Level, Rule};
pub use calendar::Calendar;
pub use engine::{
    check_listed, event_identity, Engine, Outcome, Rejection, SnapshotError, Unlisted,
};
pub use event::{Body, Event, Kind};
pub use evidence::Evidence;
pub use fact::CaseFact;
pub use policy::Policy;
pub use reference::{Reference, ReferenceError, ReferenceFiles};
pub use time::{Day, Instant};
pub use window::{reference_windows, WindowState, WindowStatus};
