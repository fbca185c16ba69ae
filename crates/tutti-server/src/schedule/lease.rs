//! The scheduler's leader lease: of several `tutti server` processes on one broker, exactly
//! one holds it and runs the scheduler.
//!
//! The lease is one key, [`lease_scheduler`], in the `tutti_leases` bucket. Its value is JSON
//! `{"holder": "<server instance id>", "expires_at": "<RFC 3339>", "term": N}` ([`LeaseValue`]).
//! The time to live lives inside the value; the bucket's 30 s `max_age` is only a backstop
//! that clears a key nobody has written for a while. `term` grows by one at every takeover,
//! so it is a fencing number the scheduler can record with each fire.
//!
//! Each contender reads the key and applies [`decide`], a pure function: no live value means
//! `create`, an expired value (by the local clock) means a compare-and-set takeover with the
//! next term, our own live value means a compare-and-set renewal with the same term, and
//! anyone else's live value means waiting. A lost compare-and-set means somebody else won.
//! Any broker error, or a value we cannot read, means "not leader": a server never assumes
//! leadership while unsure. Such errors are logged at WARN once per change, not per attempt.
//!
//! [`spawn`] runs that loop every [`LeaseConfig::renew_every`] and publishes the outcome on a
//! [`LeaseHandle`]. A leader also keeps a local deadline, measured on the monotonic clock
//! from *before* the write that set `expires_at`, and steps down when it passes even if the
//! broker never answers. Others only take over once `expires_at` has passed on their clock,
//! so two leaders can overlap by at most the clock skew between their hosts. On shutdown the
//! leader steps down first and then writes the same term with an `expires_at` at the Unix
//! epoch, so a successor takes over at once (with a higher term) regardless of clock skew.
//!
//! Terms restart at 1 only if the key disappears entirely, which needs nobody to hold it for
//! the bucket's `max_age`. That is safe for fencing as long as the TTL stays below it: by
//! then every earlier leader has stepped down at its own deadline.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tutti_kv::{Bucket, KvError};
use tutti_proto::kv_keys::lease_scheduler;

/// How long a lease lasts and how often its holder renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a written lease stays valid. Default 15 s; keep it well below the bucket's
    /// 30 s `max_age`.
    pub ttl: Duration,
    /// How often the loop reads and renews (or tries to take) the lease. Default `ttl / 3`,
    /// so a leader survives one or two failed renewals before its lease expires.
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// A config with `ttl` and the default renewal period, `ttl / 3`.
    pub fn with_ttl(ttl: Duration) -> LeaseConfig {
        LeaseConfig {
            ttl,
            renew_every: ttl / 3,
        }
    }
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig::with_ttl(Duration::from_secs(15))
    }
}

/// The lease's value in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    /// The server instance that holds (or last held) the lease.
    pub holder: String,
    /// When the lease lapses unless renewed; the Unix epoch once released.
    pub expires_at: Timestamp,
    /// The fencing number: one more than the previous holder's.
    pub term: u64,
}

/// What one contender should write, given what the key holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The key has no live value: `create` it.
    Create(LeaseValue),
    /// We hold a live lease: compare-and-set a later expiry on `revision`, same term.
    Renew {
        /// The value to write.
        value: LeaseValue,
        /// The revision read.
        revision: u64,
    },
    /// The lease has expired: compare-and-set ourselves with the next term on `revision`.
    TakeOver {
        /// The value to write.
        value: LeaseValue,
        /// The revision read.
        revision: u64,
    },
    /// Someone else holds a live lease.
    Wait {
        /// Who holds it.
        holder: String,
        /// When it lapses unless renewed.
        expires_at: Timestamp,
    },
}

/// Decides what `me` should do about the lease `current` (value and revision; `None` when the
/// key is absent or deleted) at wall-clock time `now`, for a lease lasting `ttl`.
pub fn decide(
    current: Option<(LeaseValue, u64)>,
    me: &str,
    now: Timestamp,
    ttl: Duration,
) -> Action {
    let expires_at = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
    let Some((held, revision)) = current else {
        return Action::Create(LeaseValue {
            holder: me.to_string(),
            expires_at,
            term: 1,
        });
    };
    // An expired lease is taken over with a new term even when it was ours: we stepped
    // down at our local deadline, so this is a new leadership, not a continuation.
    if held.expires_at <= now {
        let value = LeaseValue {
            holder: me.to_string(),
            expires_at,
            term: held.term + 1,
        };
        return Action::TakeOver { value, revision };
    }
    if held.holder == me {
        let value = LeaseValue {
            holder: me.to_string(),
            expires_at,
            term: held.term,
        };
        return Action::Renew { value, revision };
    }
    Action::Wait {
        holder: held.holder,
        expires_at: held.expires_at,
    }
}

/// Starts contending for the scheduler lease in `bucket` (the `tutti_leases` bucket) as
/// `holder`, a server instance id unique to this process. The task renews every
/// `config.renew_every` and, when `shutdown` becomes `true` (or its sender is dropped), steps
/// down and releases the lease. Dropping the handle does not stop the task.
pub fn spawn(
    bucket: Bucket,
    holder: String,
    config: LeaseConfig,
    shutdown: watch::Receiver<bool>,
) -> LeaseHandle {
    let (sender, changes) = watch::channel(None);
    let contender = Contender {
        bucket,
        key: lease_scheduler(),
        holder,
        config,
    };
    let state = State {
        sender,
        leading: None,
        last_error: None,
    };
    let task = tokio::spawn(run(contender, state, shutdown));
    LeaseHandle { changes, task }
}

/// A running lease task: whether this server is the leader, and with which term.
#[derive(Debug)]
pub struct LeaseHandle {
    changes: watch::Receiver<Option<u64>>,
    task: JoinHandle<()>,
}

impl LeaseHandle {
    /// Whether this server holds the lease right now.
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The term of the lease this server holds, if it holds it.
    pub fn term(&self) -> Option<u64> {
        *self.changes.borrow()
    }

    /// A receiver of leadership changes: `Some(term)` while leader, `None` otherwise. It
    /// reads `None` once the task has ended, however it ended.
    pub fn changes(&self) -> watch::Receiver<Option<u64>> {
        self.changes.clone()
    }

    /// Waits until the task has ended: after shutdown, once the lease is released.
    pub async fn join(self) {
        if let Err(err) = self.task.await
            && err.is_panic()
        {
            tracing::error!(error = %err, "The scheduler lease task panicked.");
        }
    }

    /// Stops the task at once without releasing the lease, which then lapses at its expiry,
    /// as after a crash. Shutdown through the `shutdown` receiver is the orderly way.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// What the loop needs to talk to the broker.
struct Contender {
    bucket: Bucket,
    key: String,
    holder: String,
    config: LeaseConfig,
}

/// The lease we hold, as far as this process knows.
#[derive(Debug, Clone, Copy)]
struct Leading {
    term: u64,
    /// When we must stop acting as leader unless a renewal succeeds first.
    deadline: Instant,
}

/// The loop's view of leadership and the channel it publishes on.
struct State {
    sender: watch::Sender<Option<u64>>,
    leading: Option<Leading>,
    /// The last broker error logged, so the same failure is logged once.
    last_error: Option<String>,
}

/// Why an attempt could not tell whether we hold the lease.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("the lease value cannot be decoded: {0}")]
    Value(#[from] serde_json::Error),
}

async fn run(contender: Contender, mut state: State, mut shutdown: watch::Receiver<bool>) {
    let mut interrupted_write = false;
    loop {
        let attempt = contender.attempt();
        let Some(outcome) = state.guarded(attempt, &mut shutdown).await else {
            // The broker may have applied the write we stopped waiting for.
            interrupted_write = true;
            break;
        };
        state.apply(outcome, &contender.holder);
        let pause = tokio::time::sleep(contender.config.renew_every);
        if state.guarded(pause, &mut shutdown).await.is_none() {
            break;
        }
    }
    let leading = state.step_down("this server is shutting down");
    if leading.is_some() || interrupted_write {
        match contender.release().await {
            Ok(Some(term)) => tracing::info!(term, "Released the scheduler lease."),
            Ok(None) => {}
            Err(err) => tracing::warn!(
                error = %err,
                "Cannot release the scheduler lease; another server takes over when it expires."
            ),
        }
    }
}

impl Contender {
    /// One read-decide-write round: `Ok(Some)` if we hold the lease after it.
    async fn attempt(&self) -> Result<Option<Leading>, AttemptError> {
        let current = match self.bucket.entry(&self.key).await? {
            Some(entry) if !entry.is_tombstone() => {
                Some((serde_json::from_slice(&entry.value)?, entry.revision))
            }
            _ => None,
        };
        // The local deadline is taken with the wall-clock time that sets `expires_at`, before
        // the write, so it never falls after the expiry the others will see.
        let (now, deadline) = (Timestamp::now(), Instant::now() + self.config.ttl);
        let (term, written) = match decide(current, &self.holder, now, self.config.ttl) {
            Action::Create(value) => {
                let written = self.bucket.create(&self.key, encode(&value)?).await;
                (value.term, written)
            }
            Action::Renew { value, revision } | Action::TakeOver { value, revision } => {
                let written = self
                    .bucket
                    .update(&self.key, encode(&value)?, revision)
                    .await;
                (value.term, written)
            }
            Action::Wait { .. } => return Ok(None),
        };
        match written {
            Ok(_revision) => Ok(Some(Leading { term, deadline })),
            // Somebody else wrote between our read and our write: they won this round.
            Err(KvError::AlreadyExists | KvError::RevisionMismatch) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Writes our term back with an expiry at the epoch, so the next contender takes over at
    /// once instead of after the TTL, and returns the released term. Keeping the term
    /// (rather than deleting the key) makes the successor's term higher than ours. It reads
    /// the key first because a renewal interrupted by shutdown may have landed after all.
    async fn release(&self) -> Result<Option<u64>, AttemptError> {
        let Some(entry) = self.bucket.entry(&self.key).await? else {
            return Ok(None);
        };
        if entry.is_tombstone() {
            return Ok(None);
        }
        let held: LeaseValue = serde_json::from_slice(&entry.value)?;
        if held.holder != self.holder {
            return Ok(None);
        }
        let term = held.term;
        let released = LeaseValue {
            expires_at: Timestamp::UNIX_EPOCH,
            ..held
        };
        match self
            .bucket
            .update(&self.key, encode(&released)?, entry.revision)
            .await
        {
            Ok(_) => Ok(Some(term)),
            // Someone took it over since the read: nothing left to release.
            Err(KvError::RevisionMismatch) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

impl State {
    /// Awaits `future` unless shutdown is requested first (`None`), stepping down meanwhile
    /// if our local deadline passes: a renewal stuck on an unreachable broker must not keep
    /// us leader past the expiry others will see.
    async fn guarded<F: Future>(
        &mut self,
        future: F,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<F::Output> {
        tokio::pin!(future);
        loop {
            let deadline = self.leading.map(|leading| leading.deadline);
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return None,
                () = sleep_until(deadline) => {
                    self.step_down("the lease expired before a renewal succeeded");
                }
                output = &mut future => return Some(output),
            }
        }
    }

    /// Records the outcome of an attempt.
    fn apply(&mut self, outcome: Result<Option<Leading>, AttemptError>, holder: &str) {
        match outcome {
            // A write that took longer than the TTL leaves a lease that may already have
            // lapsed for others, so it does not make us leader.
            Ok(Some(leading)) if leading.deadline > Instant::now() => {
                self.clear_error();
                self.lead(leading, holder);
            }
            Ok(Some(_)) => {
                self.clear_error();
                self.step_down("the renewal took longer than the lease lasts");
            }
            Ok(None) => {
                self.clear_error();
                self.step_down("another server holds the lease");
            }
            Err(err) => {
                self.report_error(&err);
                self.step_down("the lease cannot be read or written");
            }
        }
    }

    fn lead(&mut self, leading: Leading, holder: &str) {
        let term = leading.term;
        let previous = self.leading.replace(leading);
        if previous.map(|previous| previous.term) != Some(term) {
            tracing::info!(term, holder, "This server is now the scheduler leader.");
            self.sender.send_replace(Some(term));
        }
    }

    /// Stops acting as leader; returns the lease we held, if any.
    fn step_down(&mut self, reason: &str) -> Option<Leading> {
        let leading = self.leading.take()?;
        self.sender.send_replace(None);
        tracing::info!(
            term = leading.term,
            reason,
            "This server is no longer the scheduler leader."
        );
        Some(leading)
    }

    fn report_error(&mut self, err: &AttemptError) {
        let text = err.to_string();
        if self.last_error.as_ref() != Some(&text) {
            tracing::warn!(
                error = %text,
                "Cannot read or renew the scheduler lease; this server does not schedule until it can."
            );
            self.last_error = Some(text);
        }
    }

    fn clear_error(&mut self) {
        if self.last_error.take().is_some() {
            tracing::info!("The scheduler lease is reachable again.");
        }
    }
}

impl Drop for State {
    /// However the task ends (shutdown, abort, panic), watchers must not keep reading a term.
    fn drop(&mut self) {
        self.sender.send_replace(None);
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn encode(value: &LeaseValue) -> Result<bytes::Bytes, AttemptError> {
    Ok(serde_json::to_vec(value)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn lease(holder: &str, expires_at: Timestamp, term: u64) -> LeaseValue {
        LeaseValue {
            holder: holder.to_string(),
            expires_at,
            term,
        }
    }

    #[test]
    fn an_absent_key_is_created_with_term_one() {
        let action = decide(None, "a", at(0), TTL);
        assert_eq!(action, Action::Create(lease("a", at(15), 1)));
    }

    #[test]
    fn our_live_lease_is_renewed_with_the_same_term() {
        let current = Some((lease("a", at(5), 4), 17));
        let action = decide(current, "a", at(0), TTL);
        let value = lease("a", at(15), 4);
        assert_eq!(
            action,
            Action::Renew {
                value,
                revision: 17
            }
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over_with_the_next_term() {
        let current = Some((lease("b", at(-1), 4), 17));
        let action = decide(current, "a", at(0), TTL);
        let value = lease("a", at(15), 5);
        assert_eq!(
            action,
            Action::TakeOver {
                value,
                revision: 17
            }
        );
    }

    #[test]
    fn a_lease_expiring_exactly_now_is_expired() {
        let current = Some((lease("b", at(0), 4), 17));
        let action = decide(current, "a", at(0), TTL);
        assert!(matches!(action, Action::TakeOver { .. }), "{action:?}");
    }

    #[test]
    fn our_own_expired_lease_starts_a_new_term() {
        let current = Some((lease("a", at(-1), 4), 17));
        let action = decide(current, "a", at(0), TTL);
        let value = lease("a", at(15), 5);
        assert_eq!(
            action,
            Action::TakeOver {
                value,
                revision: 17
            }
        );
    }

    #[test]
    fn a_released_lease_is_taken_over_at_once() {
        let current = Some((lease("b", Timestamp::UNIX_EPOCH, 4), 17));
        let action = decide(current, "a", at(0), TTL);
        assert!(matches!(action, Action::TakeOver { .. }), "{action:?}");
    }

    #[test]
    fn someone_elses_live_lease_is_waited_for() {
        let current = Some((lease("b", at(1), 4), 17));
        let action = decide(current, "a", at(0), TTL);
        let expected = Action::Wait {
            holder: "b".to_string(),
            expires_at: at(1),
        };
        assert_eq!(action, expected);
    }

    #[test]
    fn the_value_is_json_with_an_rfc3339_expiry() {
        let value = lease("server-1", at(0), 3);
        let json = serde_json::to_value(&value).unwrap();
        let expected = serde_json::json!({
            "holder": "server-1",
            "expires_at": "2023-11-14T22:13:20Z",
            "term": 3,
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn the_default_renews_three_times_per_ttl() {
        let config = LeaseConfig::default();
        assert_eq!(config.ttl, Duration::from_secs(15));
        assert_eq!(config.renew_every, Duration::from_secs(5));
    }
}
