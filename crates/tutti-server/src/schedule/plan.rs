//! What a cron schedule should do now: which fire times are due, which were missed, and
//! each fire's jitter. Pure functions of the schedule, the last fire and the clock, so the
//! scheduler loop stays thin and this is tested without a broker.
//!
//! Rules:
//! - Fire times are computed after the later of the last recorded fire and the moment the
//!   schedule was last changed: applying a schedule never fires times from before it.
//! - A fire is due once `fire_at + jitter` has passed. The jitter is derived from the
//!   schedule name and the fire time (not random per process), so a new leader after a
//!   takeover computes the same delay and claims the same fire.
//! - A due fire older than the grace period (the server was down, or no leader) is
//!   recorded as `missed` rather than run late; only fires inside the grace run.
//!   Everything else a fire may meet (a freeze, a missing job) is decided by the loop.

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::spec::ScheduleSpec;

/// How late a fire may still run.
pub const GRACE: SignedDuration = SignedDuration::from_secs(300);
/// At most this many fire times are considered per schedule and tick.
const MAX_PER_TICK: usize = 32;

/// What to do with one fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Run it now.
    Run(Timestamp),
    /// Record it as missed.
    Missed(Timestamp),
}

/// The fires of `spec` that are due at `now`, oldest first. `since` is the later of the
/// last recorded fire time and the schedule's last change.
pub fn due_fires(name: &str, spec: &ScheduleSpec, since: Timestamp, now: Timestamp) -> Vec<Due> {
    spec.next_fires(since, MAX_PER_TICK)
        .into_iter()
        .take_while(|fire| *fire <= now)
        .filter(|fire| start_at(name, spec, *fire) <= now)
        .map(
            |fire| match now.duration_since(fire) > GRACE + jitter(name, spec, fire) {
                true => Due::Missed(fire),
                false => Due::Run(fire),
            },
        )
        .collect()
}

/// When the fire at `fire_at` starts, its jitter included.
pub fn start_at(name: &str, spec: &ScheduleSpec, fire_at: Timestamp) -> Timestamp {
    fire_at
        .checked_add(jitter(name, spec, fire_at))
        .unwrap_or(fire_at)
}

/// The delay of one fire: 0 to `jitter_secs`, the same on every server.
pub fn jitter(name: &str, spec: &ScheduleSpec, fire_at: Timestamp) -> SignedDuration {
    let max = spec.jitter_secs.get();
    if max == 0 {
        return SignedDuration::ZERO;
    }
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(fire_at.as_second().to_be_bytes())
        .finalize();
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"));
    SignedDuration::from_secs(i64::try_from(bits % (max + 1)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::parse_yaml;

    fn spec(extra: &str) -> ScheduleSpec {
        let text = format!(
            "kind: Schedule\nname: s\njob: j\ntargets: {{all: true}}\ncron: \"*/10 * * * *\"\n{extra}"
        );
        parse_yaml(&text).unwrap().remove(0).spec
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn due_fires_run_inside_the_grace_and_are_missed_after_it() {
        let spec = spec("");
        let since = at("2026-01-01T00:00:00Z");
        assert_eq!(
            due_fires("s", &spec, since, at("2026-01-01T00:09:59Z")),
            vec![]
        );
        assert_eq!(
            due_fires("s", &spec, since, at("2026-01-01T00:10:00Z")),
            vec![Due::Run(at("2026-01-01T00:10:00Z"))]
        );
        // The server was away for 25 minutes: two fires are too old to run, one is due.
        assert_eq!(
            due_fires("s", &spec, since, at("2026-01-01T00:32:00Z")),
            vec![
                Due::Missed(at("2026-01-01T00:10:00Z")),
                Due::Missed(at("2026-01-01T00:20:00Z")),
                Due::Run(at("2026-01-01T00:30:00Z")),
            ]
        );
        assert_eq!(
            due_fires(
                "s",
                &spec,
                at("2026-01-01T00:30:00Z"),
                at("2026-01-01T00:32:00Z")
            ),
            vec![],
            "a recorded fire is not due again"
        );
    }

    #[test]
    fn jitter_is_bounded_stable_and_spread() {
        let spec = spec("jitter_secs: 120\n");
        let fires: Vec<Timestamp> = (0..200)
            .map(|n| at("2026-01-01T00:00:00Z") + SignedDuration::from_secs(600 * n))
            .collect();
        let delays: Vec<i64> = fires
            .iter()
            .map(|f| jitter("s", &spec, *f).as_secs())
            .collect();
        assert!(delays.iter().all(|d| (0..=120).contains(d)), "{delays:?}");
        assert_eq!(
            delays,
            fires
                .iter()
                .map(|f| jitter("s", &spec, *f).as_secs())
                .collect::<Vec<_>>()
        );
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "spread over the range: {distinct:?}");
        let fire = fires[1];
        let delay = jitter("s", &spec, fire);
        let before = fire + delay - SignedDuration::from_secs(1);
        let due_before = due_fires("s", &spec, fires[0], before);
        assert!(
            delay.is_zero() || due_before.is_empty(),
            "not due before its jitter"
        );
        assert_eq!(
            due_fires("s", &spec, fires[0], fire + delay),
            vec![Due::Run(fire)]
        );
    }
}
