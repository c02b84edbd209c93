//! jiancha's simulator (`jiancha simulate`, and the demo's event source): a service hall or a
//! whole city on the real working-day calendar, with misconduct injected at known rates and a
//! ground-truth list of the alerts that must follow.
//!
//! ```text
//! Profile ─▶ World (reference directory) ─▶ Simulator (iterator of events, time order) ─▶ sink
//!                                              └─ Truth (expected alerts, derived by counting)
//! ```
//! Everything is deterministic from the seed. The ground truth assumes the default policy: the
//! simulator writes no `policy.toml`.

pub mod gen;
pub mod truth;
pub mod world;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use gen::{truth_lines, Rates, Simulator};
pub use truth::Expected;
pub use world::{Profile, World};

/// Paces a stream of event times against the wall clock.
///
/// `speed` is simulated seconds per wall second (`None`: as fast as possible). A quiet gap
/// (a night, a weekend) never takes longer than `max_gap` of wall time. With `not_ahead`, an
/// event is never let out before the wall clock has reached its time (a live receiver refuses
/// events from the future), so an accelerated run that starts in the past catches up with the
/// present and then goes on in real time.
#[derive(Debug)]
pub struct Pacer {
    speed: Option<f64>,
    max_gap: Duration,
    not_ahead: bool,
    last: Option<rules::Instant>,
}

/// The wall clock as an engine instant.
pub fn wall_now() -> rules::Instant {
    rules::Instant(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

impl Pacer {
    /// A pacer (see the type's documentation).
    pub fn new(speed: Option<f64>, max_gap: Duration, not_ahead: bool) -> Pacer {
        Pacer {
            speed: speed.filter(|s| *s > 0.0),
            max_gap,
            not_ahead,
            last: None,
        }
    }

    /// How long to wait before letting out an event at `t` (call [`Pacer::passed`] after).
    pub fn delay(&self, t: rules::Instant) -> Duration {
        let mut delay = Duration::ZERO;
        if let (Some(speed), Some(last)) = (self.speed, self.last) {
            let gap = (t.0 - last.0).max(0) as f64 / speed;
            delay = Duration::from_secs_f64(gap).min(self.max_gap);
        }
        if self.not_ahead {
            let ahead = (t.0 - wall_now().0).max(0) as u64;
            delay = delay.max(Duration::from_secs(ahead));
        }
        delay
    }

    /// The event at `t` has been let out.
    pub fn passed(&mut self, t: rules::Instant) {
        self.last = Some(t);
    }
}
