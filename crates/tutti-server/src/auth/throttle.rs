//! Login throttling: failed attempts are counted per account and per source address in a
//! sliding window; past the limit, further attempts are refused until the lockout ends,
//! whether or not the password would be right (so guessing gains nothing).
//!
//! The counters live in memory of one server: a restart forgets them, and each replica of
//! a multi-server deployment counts on its own. Both are acceptable for a throttle (it
//! bounds guessing speed; argon2's cost bounds it further) and documented for operators.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits for one kind of key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures allowed inside `window` before a lockout.
    pub max_failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

#[derive(Debug, Default)]
struct Counter {
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
}

/// Failure counters for accounts and addresses.
#[derive(Debug)]
pub struct Throttle {
    account: Limit,
    source: Limit,
    counters: Mutex<HashMap<(Kind, String), Counter>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Account,
    Source,
}

/// Entries kept before stale ones are swept, bounding memory under a spray of names.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    /// A throttle with these limits.
    pub fn new(account: Limit, source: Limit) -> Throttle {
        Throttle {
            account,
            source,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// When the account or the source is locked out, how long until it is not.
    pub fn locked(&self, account: &str, source: Option<&str>, now: Instant) -> Option<Duration> {
        let counters = self.counters.lock().unwrap_or_else(|err| err.into_inner());
        keys(account, source)
            .filter_map(|key| counters.get(&key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Records a failed attempt; returns the lockout it started, if any.
    pub fn failed(&self, account: &str, source: Option<&str>, now: Instant) -> Option<Duration> {
        let mut counters = self.counters.lock().unwrap_or_else(|err| err.into_inner());
        if counters.len() > SWEEP_AT {
            counters.retain(|(kind, _), counter| {
                let limit = self.limit(*kind);
                counter.locked_until.is_some_and(|until| until > now)
                    || counter.failures.iter().any(|at| now - *at < limit.window)
            });
        }
        let mut started = None;
        for key in keys(account, source) {
            let limit = self.limit(key.0);
            let counter = counters.entry(key).or_default();
            counter
                .failures
                .retain(|at| now.saturating_duration_since(*at) < limit.window);
            counter.failures.push(now);
            if counter.failures.len() >= limit.max_failures as usize {
                counter.locked_until = Some(now + limit.lockout);
                counter.failures.clear();
                started = Some(started.map_or(limit.lockout, |d: Duration| d.max(limit.lockout)));
            }
        }
        started
    }

    /// Clears the account's failures after a successful login (the address keeps its
    /// count: one good login must not launder a spray across many accounts).
    pub fn succeeded(&self, account: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(|err| err.into_inner());
        counters.remove(&(Kind::Account, account.to_string()));
    }

    fn limit(&self, kind: Kind) -> Limit {
        match kind {
            Kind::Account => self.account,
            Kind::Source => self.source,
        }
    }
}

fn keys(account: &str, source: Option<&str>) -> impl Iterator<Item = (Kind, String)> {
    std::iter::once((Kind::Account, account.to_lowercase()))
        .chain(source.map(|source| (Kind::Source, source.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        let limit = |max_failures| Limit {
            max_failures,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        };
        Throttle::new(limit(3), limit(5))
    }

    #[test]
    fn locks_an_account_after_repeated_failures_and_releases_it_later() {
        let throttle = throttle();
        let start = Instant::now();
        assert_eq!(throttle.failed("alice", Some("10.0.0.1"), start), None);
        assert_eq!(throttle.failed("alice", Some("10.0.0.2"), start), None);
        assert_eq!(
            throttle.failed("Alice", Some("10.0.0.3"), start),
            Some(Duration::from_secs(300)),
            "the third failure inside the window locks, whatever the case or address"
        );
        assert!(throttle.locked("alice", Some("10.0.0.9"), start).is_some());
        assert!(throttle.locked("bob", Some("10.0.0.9"), start).is_none());
        let later = start + Duration::from_secs(301);
        assert!(throttle.locked("alice", None, later).is_none());
    }

    #[test]
    fn locks_an_address_spraying_many_accounts() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..4 {
            throttle.failed(&format!("user{n}"), Some("192.0.2.7"), now);
        }
        throttle.succeeded("user0");
        assert!(throttle.failed("user4", Some("192.0.2.7"), now).is_some());
        assert!(
            throttle
                .locked("someone-else", Some("192.0.2.7"), now)
                .is_some()
        );
        assert!(
            throttle
                .locked("someone-else", Some("192.0.2.8"), now)
                .is_none()
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let throttle = throttle();
        let start = Instant::now();
        throttle.failed("carol", None, start);
        throttle.failed("carol", None, start);
        let later = start + Duration::from_secs(61);
        assert_eq!(throttle.failed("carol", None, later), None);
    }
}
