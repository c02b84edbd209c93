//! Login rate limits: failed logins counted per username and per client address within a
//! window; past the threshold the username or address is locked for a while and refused
//! *before* the password is checked (an Argon2 check costs tens of milliseconds of CPU, so a
//! flood must not reach it). 等保 2.0 asks for exactly this (登录失败处理: 限制非法登录次数).
//!
//! Unknown usernames are counted like known ones, so a lockout says nothing about which names
//! exist. A lockout by name can be used to keep a person out for `login_lockout`; the per-address
//! count is what stops one machine from doing that to many names (docs/SECURITY.md).
//! The table is bounded: past [`MAX_TRACKED`] entries the ones with nothing left to remember
//! are dropped, and if that is not enough the oldest are.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::server::Limits;

/// Most usernames and addresses remembered at once.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Debug, Default)]
struct Entry {
    /// Times of the failures inside the window (at most the threshold).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// Attempts refused during the current lock (for rate-limited logging).
    refused: u64,
}

/// Why a login is refused without checking the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Locked {
    /// `"user"` or `"address"`.
    pub what: &'static str,
    /// How long until it is unlocked.
    pub retry_after: Duration,
    /// Attempts refused during this lock so far (1 for the first).
    pub refused: u64,
}

/// Failed-login counts and lockouts.
#[derive(Debug)]
pub(crate) struct LoginThrottle {
    per_user: u32,
    per_address: u32,
    window: Duration,
    lockout: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl LoginThrottle {
    pub(crate) fn new(limits: &Limits) -> LoginThrottle {
        LoginThrottle {
            per_user: limits.login_failures_per_user.max(1),
            per_address: limits.login_failures_per_address.max(1),
            window: limits.login_window,
            lockout: limits.login_lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::User(username.to_string())).chain(addr.map(Key::Addr))
    }

    /// Refuse if the username or the address is locked at `now`.
    pub(crate) fn check(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Locked> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(username, addr) {
            let Some(e) = entries.get_mut(&key) else {
                continue;
            };
            match e.locked_until {
                Some(until) if until > now => {
                    e.refused += 1;
                    return Err(Locked {
                        what: match key {
                            Key::User(_) => "user",
                            Key::Addr(_) => "address",
                        },
                        retry_after: until - now,
                        refused: e.refused,
                    });
                }
                Some(_) => {
                    e.locked_until = None;
                    e.failures.clear();
                    e.refused = 0;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Count a failure; returns what it locked (`"user"`, `"address"`), if anything.
    pub(crate) fn failed(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Vec<&'static str> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED {
            self.prune(&mut entries, now);
        }
        let mut locked = Vec::new();
        for key in Self::keys(username, addr) {
            let (limit, what) = match key {
                Key::User(_) => (self.per_user, "user"),
                Key::Addr(_) => (self.per_address, "address"),
            };
            let e = entries.entry(key).or_default();
            while e
                .failures
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                e.failures.pop_front();
            }
            e.failures.push_back(now);
            if e.failures.len() >= limit as usize && e.locked_until.is_none() {
                e.locked_until = Some(now + self.lockout);
                e.refused = 0;
                e.failures.clear();
                locked.push(what);
            }
        }
        locked
    }

    /// A successful login clears the username's failures (not the address's: one machine
    /// guessing many names while also logging in correctly is still guessing).
    pub(crate) fn succeeded(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&Key::User(username.to_string()));
    }

    fn prune(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        entries.retain(|_, e| {
            e.locked_until.is_some_and(|u| u > now)
                || e.failures
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
        });
        if entries.len() >= MAX_TRACKED {
            // Still full of live entries: forget half, the ones not locked first.
            let mut keys: Vec<(bool, Key)> = entries
                .iter()
                .map(|(k, e)| (e.locked_until.is_some(), k.clone()))
                .collect();
            keys.sort_by_key(|(locked, _)| *locked);
            for (_, k) in keys.into_iter().take(MAX_TRACKED / 2) {
                entries.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(&Limits {
            login_failures_per_user: 3,
            login_failures_per_address: 5,
            login_window: Duration::from_secs(60),
            login_lockout: Duration::from_secs(300),
            ..Limits::default()
        })
    }

    #[test]
    fn a_username_locks_after_its_failures_and_unlocks_after_the_lockout() {
        let t = throttle();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        assert!(t.failed("pj", Some(a), t0).is_empty());
        assert!(t.failed("pj", Some(a), t0).is_empty());
        assert_eq!(t.failed("pj", Some(a), t0), vec!["user"]);
        let locked = t.check("pj", None, t0).expect_err("locked");
        assert_eq!(locked.what, "user");
        assert_eq!(locked.retry_after, Duration::from_secs(300));
        assert_eq!(t.check("pj", None, t0).expect_err("again").refused, 2);
        assert!(t.check("other", None, t0).is_ok(), "only that name");
        assert!(t.check("pj", None, t0 + Duration::from_secs(300)).is_ok());
        // Failures older than the window are forgotten.
        let t1 = t0 + Duration::from_secs(400);
        t.failed("pj", None, t1);
        t.failed("pj", None, t1);
        assert!(t
            .failed("pj", None, t1 + Duration::from_secs(61))
            .is_empty());
    }

    #[test]
    fn an_address_locks_across_usernames() {
        let t = throttle();
        let now = Instant::now();
        let a: IpAddr = "10.0.0.2".parse().expect("ip");
        for i in 0..4 {
            assert!(t.failed(&format!("guess{i}"), Some(a), now).is_empty());
        }
        assert_eq!(t.failed("guess4", Some(a), now), vec!["address"]);
        assert_eq!(
            t.check("anyone", Some(a), now).expect_err("").what,
            "address"
        );
        let b: IpAddr = "10.0.0.3".parse().expect("ip");
        assert!(t.check("anyone", Some(b), now).is_ok());
        t.succeeded("guess0");
        assert!(
            t.check("anyone", Some(a), now).is_err(),
            "the address stays locked"
        );
    }
}
