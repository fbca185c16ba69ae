//! [`Store`], the one handle the server holds: an enum over backends, so a Postgres
//! variant can be added later without touching a caller.
//!
//! Every method dispatches to the backend's method of the same name and signature. The
//! list below is the whole public API of the crate's storage, grouped as the server uses
//! it: projectors, agents and groups, jobs, runs and results, inventory, audit and
//! enrollment tokens, then accounts, sessions and API tokens.

use std::path::PathBuf;

use std::collections::BTreeMap;

use jiff::Timestamp;
use tutti_proto::audit::AuditRecord;
use tutti_proto::event::AgentEvent;
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::{InventorySnapshot, Package};
use tutti_proto::result::RunResult;
use tutti_proto::{AgentId, GroupName, JobId, KeyId, ResultId, RunId};

use crate::error::StoreResult;
use crate::model::accounts::{
    Account, AccountCredentials, AccountUpdate, ApiToken, NewAccount, NewApiToken, NewSession,
    SessionInfo, TokenAuth,
};
use crate::model::agents::{Agent, AgentQuery, Group, NewAgent};
use crate::model::audit::{AuditEntry, AuditQuery};
use crate::model::coverage::{AgentCoverage, CoverageQuery};
use crate::model::identities::{BrokerIdentity, KeyTrust};
use crate::model::ingest::{Anomaly, ApplyOutcome, Sequenced};
use crate::model::inventory::{AgentInventory, InventoryChange, PackageHit, PackageQuery};
use crate::model::jobs::{Job, JobDraft, JobVersion, PutJobOutcome};
use crate::model::overview::FleetOverview;
use crate::model::rollouts::{NewRollout, PendingRelease, Rollout, RolloutChange, WaveCounts};
use crate::model::runs::{
    CommandPublished, NewRun, Run, RunDetail, RunQuery, StoredResult, Target, TargetQuery,
};
use crate::model::schedules::{PutScheduleOutcome, Schedule, ScheduleDraft, ScheduleFire};
use crate::model::tokens::{EnrollmentToken, NewEnrollmentToken};
use crate::page::{Page, Paged};
use crate::sqlite::SqliteStore;
use crate::state::RunCounts;

/// The server's database. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite file in WAL mode.
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: impl Into<PathBuf>) -> StoreResult<Store> {
        Ok(Store::Sqlite(SqliteStore::open(path).await?))
    }
}

/// Generates `Store` methods that forward to the backend method of the same name.
macro_rules! dispatch {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    match self {
                        Store::Sqlite(store) => store.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

dispatch! {
    /// Projects results, one transaction per batch. Keyed by result id: a redelivered
    /// result is a no-op. A result moves its target when the transition table allows it;
    /// one for an unknown run, an untargeted agent or with inconsistent ids is recorded as
    /// an anomaly, and one from an agent that is not enrolled (never, or deleted) changes
    /// nothing and is listed in `unknown_agents`, as it is by every `apply_*` below.
    /// Acknowledge the batch only after this returns `Ok`.
    fn apply_results(&self, batch: Vec<Sequenced<RunResult>>) -> ApplyOutcome;
    /// Projects agent events, one transaction per batch, unique by stream sequence:
    /// `received` → delivered, `started` → running, `gap_detected` → missed for every
    /// queued or delivered target of the agent whose command lies inside the gap.
    fn apply_events(&self, batch: Vec<Sequenced<AgentEvent>>) -> ApplyOutcome;
    /// Projects inventory snapshots: diffs each against the agent's current one and
    /// records what was added, removed or changed. Snapshots not newer (by stream
    /// sequence) than the stored one are ignored.
    fn apply_inventory(&self, batch: Vec<Sequenced<InventorySnapshot>>) -> ApplyOutcome;
    /// Updates enrolled agents from a micro-batch of heartbeats; a heartbeat older than the
    /// stored one is ignored. Only enrollment creates an agent.
    fn apply_heartbeats(&self, batch: Vec<Heartbeat>) -> ApplyOutcome;
    /// Projects audit records, unique by stream sequence.
    fn apply_audit(&self, batch: Vec<Sequenced<AuditRecord>>) -> ApplyOutcome;
    /// The highest stream sequence committed by the projector of `stream` (0 if none).
    fn projector_position(&self, stream: &str) -> u64;
    /// Recorded anomalies, newest first.
    fn list_anomalies(&self, page: Page) -> Paged<Anomaly>;
    /// Agent liveness totals, OS and version breakdowns, and failed targets since
    /// `failures_since`.
    fn fleet_overview(&self, online_since: Timestamp, failures_since: Timestamp) -> FleetOverview;
    /// Per-state target counts of each run, keyed by run id (one query per run; for a page).
    fn counts_of_runs(&self, run_ids: Vec<RunId>) -> BTreeMap<String, RunCounts>;

    /// Enrolls an agent with one use of the token whose secret hashes to `token_hash`,
    /// puts it in the token's groups (when the token has any), and returns its groups.
    /// `NotFound` for an invalid, expired, revoked or used-up token; `Conflict` for an
    /// agent that is already enrolled. Either way nothing is consumed.
    fn enroll_agent(&self, token_hash: &str, agent: NewAgent) -> Vec<GroupName>;
    /// One agent with its groups and liveness (heartbeats before `online_since` are
    /// offline).
    fn get_agent(&self, agent_id: &AgentId, online_since: Timestamp) -> Agent;
    /// Agents filtered by liveness, group, OS and search text, sorted and paged.
    fn list_agents(&self, query: &AgentQuery) -> Paged<Agent>;
    /// Deletes an agent with its group membership and inventory; its runs stay.
    fn delete_agent(&self, agent_id: &AgentId) -> ();
    /// Replaces an agent's groups, in configuration-layer order, creating missing groups.
    fn set_agent_groups(&self, agent_id: &AgentId, groups: Vec<GroupName>, now: Timestamp) -> ();
    /// An agent's run targets, most recent first.
    fn agent_targets(&self, agent_id: &AgentId, page: Page) -> Paged<Target>;
    /// Creates a group; `Conflict` when it exists.
    fn create_group(&self, group: &GroupName, description: &str, now: Timestamp) -> ();
    /// Deletes a group and its memberships.
    fn delete_group(&self, group: &GroupName) -> ();
    /// Groups with member counts, by name.
    fn list_groups(&self, page: Page) -> Paged<Group>;

    /// Creates a job, or a new version when its definition changed. A change of the
    /// manifest text alone updates the current version's source without a new version.
    fn put_job(&self, draft: JobDraft, actor: &str, now: Timestamp) -> PutJobOutcome;
    /// A job at its current version, with its manifest text.
    fn get_job(&self, job_id: &JobId) -> Job;
    /// Jobs by id; anonymous (ad-hoc) jobs only when asked.
    fn list_jobs(&self, include_anonymous: bool, page: Page) -> Paged<Job>;
    /// A job's versions, newest first.
    fn list_job_versions(&self, job_id: &JobId, page: Page) -> Paged<JobVersion>;
    /// One version of a job.
    fn get_job_version(&self, job_id: &JobId, version: u32) -> JobVersion;
    /// Hides a job; the versions its runs used stay.
    fn delete_job(&self, job_id: &JobId, now: Timestamp) -> ();
    /// Revokes a job and skips (reason `revoked`) the queued and delivered targets of its
    /// open runs; returns how many were skipped.
    fn revoke_job(&self, job_id: &JobId, actor: &str, now: Timestamp) -> u64;

    /// Creates a run with one `queued` target per agent. `NotFound` when the job version
    /// does not exist, `Conflict` when the run id does.
    fn create_run(&self, run: NewRun, targets: Vec<AgentId>) -> ();
    /// Records a published command and its commands-stream sequence on the targets it
    /// reaches, which is what gap reports are compared against.
    fn set_run_command_seq(&self, published: CommandPublished) -> ();
    /// Kills a run: queued and delivered targets are skipped (reason `killed`), running
    /// ones stay until their result arrives. Returns how many were skipped.
    fn kill_run(&self, run_id: &RunId, killed_by: &str, at: Timestamp) -> u64;
    /// Expires the queued targets of runs whose deadline is before `now`.
    fn expire_targets(&self, now: Timestamp) -> u64;
    /// A run with its status and per-state counts.
    fn get_run(&self, run_id: &RunId) -> RunDetail;
    /// Runs, newest first, filtered and paged.
    fn list_runs(&self, query: &RunQuery) -> Paged<Run>;
    /// A run's targets by agent id, optionally in one state.
    fn list_targets(&self, run_id: &RunId, query: &TargetQuery) -> Paged<Target>;
    /// A run's results by agent id, optionally of one agent.
    fn list_results(&self, run_id: &RunId, agent_id: Option<&AgentId>, page: Page) -> Paged<StoredResult>;
    /// One result, with its output inline and its object reference as received.
    fn get_result(&self, result_id: &ResultId) -> StoredResult;

    /// An agent's current facts and package count.
    fn get_inventory(&self, agent_id: &AgentId) -> AgentInventory;
    /// An agent's packages by name, optionally filtered by a name substring.
    fn list_agent_packages(&self, agent_id: &AgentId, search: Option<&str>, page: Page) -> Paged<Package>;
    /// An agent's inventory history, newest first.
    fn list_inventory_changes(&self, agent_id: &AgentId, page: Page) -> Paged<InventoryChange>;
    /// Agents that have a package (and version), fleet-wide.
    fn search_packages(&self, query: &PackageQuery) -> Paged<PackageHit>;

    /// Audit entries by actor, action, target and time range, newest first.
    fn query_audit(&self, query: &AuditQuery) -> Paged<AuditEntry>;
    /// Stores a new enrollment token (its hash only).
    fn create_enrollment_token(&self, token: NewEnrollmentToken) -> ();
    /// Enrollment tokens, newest first.
    fn list_enrollment_tokens(&self, page: Page) -> Paged<EnrollmentToken>;
    /// Revokes an enrollment token.
    fn revoke_enrollment_token(&self, token_id: &str, now: Timestamp) -> ();

    /// How many accounts exist (the server bootstraps the first admin when there are none).
    fn count_accounts(&self) -> u64;
    /// Creates an account whose `updated_at` and `password_changed_at` are its
    /// `created_at`. `Conflict` when the username exists.
    fn create_account(&self, account: NewAccount) -> ();
    /// One account, without credentials. `NotFound` when it does not exist.
    fn get_account(&self, username: &str) -> Account;
    /// One account with its password hash and TOTP secret and pending secret, for sign-in
    /// and MFA enrollment. `NotFound` when it does not exist.
    fn account_credentials(&self, username: &str) -> AccountCredentials;
    /// Accounts by username.
    fn list_accounts(&self, page: Page) -> Paged<Account>;
    /// Sets the fields of `update` that are `Some`, sets `updated_at` to `now`, and returns
    /// the account as stored. `NotFound` when it does not exist. A session or API token
    /// lookup sees the change on its next call.
    fn update_account(&self, username: &str, update: AccountUpdate, now: Timestamp) -> Account;
    /// Replaces the password hash and the must-change flag; `password_changed_at` and
    /// `updated_at` become `now`. Sessions are kept (see `delete_sessions`). `NotFound`
    /// when the account does not exist.
    fn set_password(&self, username: &str, password_hash: String, must_change: bool, now: Timestamp) -> ();
    /// "Sign out everywhere": deletes the account's sessions except the one whose hash is
    /// `except_session_hash`, and returns how many were deleted (0 for an unknown account).
    fn delete_sessions(&self, username: &str, except_session_hash: Option<String>) -> u64;
    /// Sets (or, with `None`, clears) the TOTP secret being enrolled; an enabled secret is
    /// untouched. `NotFound` when the account does not exist.
    fn set_totp_pending(&self, username: &str, secret: Option<String>, now: Timestamp) -> ();
    /// In one transaction: sets the TOTP secret, clears the pending one, and replaces all
    /// recovery codes with `recovery_code_hashes`. `NotFound` when the account does not
    /// exist; a repeated hash in the list is `Other`.
    fn enable_totp(&self, username: &str, secret: String, recovery_code_hashes: Vec<String>, now: Timestamp) -> ();
    /// In one transaction: clears the TOTP secret and the pending one and deletes every
    /// recovery code. `NotFound` when the account does not exist.
    fn disable_totp(&self, username: &str, now: Timestamp) -> ();
    /// Spends the unused recovery code `code_hash` of the account with one conditional
    /// update, so a code works once even under racing sign-ins. `false` when the account has
    /// no such unused code.
    fn use_recovery_code(&self, username: &str, code_hash: &str, now: Timestamp) -> bool;
    /// How many recovery codes the account has not used (0 for an unknown account).
    fn unused_recovery_codes(&self, username: &str) -> u64;
    /// Stores a session, last seen at its creation. `NotFound` when the account does not
    /// exist, `Conflict` when the session hash does.
    fn create_session(&self, session: NewSession) -> ();
    /// A session joined with its account's current role, disabled and MFA state.
    /// `NotFound` when it does not exist or `expires_at <= now`; expired rows stay until
    /// `delete_expired_sessions`. Idle expiry is the caller's check on `last_seen_at`.
    fn get_session(&self, session_hash: &str, now: Timestamp) -> SessionInfo;
    /// Sets the session's `last_seen_at` to `now`, never moving it back. `NotFound` when
    /// the session does not exist.
    fn touch_session(&self, session_hash: &str, now: Timestamp) -> ();
    /// Records that the session passed the second factor. `NotFound` when it does not exist.
    fn set_session_mfa_passed(&self, session_hash: &str) -> ();
    /// Deletes a session; `Ok` when it does not exist, so sign-out is idempotent.
    fn delete_session(&self, session_hash: &str) -> ();
    /// Deletes the sessions with `expires_at <= now` or `last_seen_at < idle_before`;
    /// returns how many.
    fn delete_expired_sessions(&self, now: Timestamp, idle_before: Timestamp) -> u64;
    /// Stores an API token (its hash only). `NotFound` when the owner does not exist,
    /// `Conflict` when the token id or hash does.
    fn create_api_token(&self, token: NewApiToken) -> ();
    /// Finds the live token whose secret hashes to `token_hash`, records the use in
    /// `last_used_at` (at most once a minute, so authentication is normally a read only),
    /// and returns it with its owner's current disabled flag and role; refusing a
    /// disabled owner and capping the role are the caller's. `NotFound` when no token has
    /// this hash or it is revoked or expired (`expires_at <= now`).
    fn authenticate_api_token(&self, token_hash: &str, now: Timestamp) -> TokenAuth;
    /// API tokens, newest first, of one owner or, with `None`, of everyone; revoked and
    /// expired ones included.
    fn list_api_tokens(&self, username: Option<&str>, page: Page) -> Paged<ApiToken>;
    /// One API token. `NotFound` when it does not exist.
    fn get_api_token(&self, token_id: &str) -> ApiToken;
    /// Revokes an API token; revoking twice keeps the first time. `NotFound` when it does
    /// not exist.
    fn revoke_api_token(&self, token_id: &str, now: Timestamp) -> ();

    /// Creates a schedule, or replaces its definition, text and enabled flag (reviving a
    /// deleted one). A change of the text alone is `Unchanged` but stores the new text.
    fn put_schedule(&self, draft: ScheduleDraft, actor: &str, now: Timestamp) -> PutScheduleOutcome;
    /// A live schedule; `NotFound` when absent or deleted.
    fn get_schedule(&self, name: &str) -> Schedule;
    /// Live schedules by name, only the enabled ones when asked.
    fn list_schedules(&self, only_enabled: bool, page: Page) -> Paged<Schedule>;
    /// Turns a schedule on or off; `NotFound` when absent or deleted.
    fn set_schedule_enabled(&self, name: &str, enabled: bool, now: Timestamp) -> ();
    /// Deletes a schedule; its fires and runs stay. `NotFound` when absent or deleted.
    fn delete_schedule(&self, name: &str, now: Timestamp) -> ();
    /// Claims the fire of `name` at `fire_at`: `true` for the first claim, `false` for any
    /// later one (by this server or another), which must then not fire.
    fn claim_schedule_fire(&self, name: &str, fire_at: Timestamp, now: Timestamp) -> bool;
    /// Records the run a claimed fire created, or why it created none.
    fn settle_schedule_fire(&self, name: &str, fire_at: Timestamp, run_id: Option<String>, skipped: Option<String>) -> ();
    /// A schedule's fires, newest first.
    fn list_schedule_fires(&self, name: &str, page: Page) -> Paged<ScheduleFire>;
    /// Per agent, by agent id, what the runs of a schedule (of one job, at one version or
    /// any) did: the latest target's state and end, the last success, and the failed
    /// attempts since it (`failed`, `timed_out`, `interrupted`, `missed`, `expired`).
    /// Open targets are reported even when older than the query's `since`. Agents never
    /// targeted are absent.
    fn schedule_coverage(&self, query: &CoverageQuery) -> Vec<AgentCoverage>;
}

dispatch! {
    /// Creates a run whose targets are released in waves: the run, one `queued` target per
    /// agent with its wave (targets in agent id order, cut at `rollout.wave_ends`) and the
    /// rollout (`running`, wave 1, nothing released), in one transaction. Errors as
    /// [`Store::create_run`], and `Other` when the wave ends do not cover the targets.
    fn create_rollout(&self, run: NewRun, targets: Vec<AgentId>, rollout: NewRollout) -> ();
    /// The rollout of a run; `NotFound` when the run has none.
    fn get_rollout(&self, run_id: &RunId) -> Rollout;
    /// Rollouts the driver works on (`running` or `waiting`), oldest first.
    fn list_active_rollouts(&self) -> Vec<Rollout>;
    /// Each wave's targets by state, released and never released (held targets are the
    /// unreleased `queued` ones).
    fn rollout_wave_counts(&self, run_id: &RunId) -> Vec<WaveCounts>;
    /// While the rollout is `running`: releases held targets of waves up to the current
    /// one (wave, then agent id order), each with a fresh command id; with `batch_size`,
    /// only as many as keep the released unfinished targets at or under it. Returns how
    /// many. Publishing is the caller's, afterwards (see [`Store::pending_releases`]).
    fn release_targets(&self, run_id: &RunId, batch_size: Option<u64>, now: Timestamp) -> u64;
    /// Released targets still `queued` whose publish was not recorded (by
    /// `set_run_command_seq`), with the command ids chosen at release: publishing them
    /// again after a crash reuses the ids, which the stream and the agents de-duplicate.
    fn pending_releases(&self, run_id: &RunId) -> Vec<PendingRelease>;
    /// Applies a conditional change of state (and of held targets) in one transaction;
    /// `None` when the rollout was not in the expected state and wave. `NotFound` when the
    /// run has no rollout.
    fn set_rollout_state(&self, run_id: &RunId, change: RolloutChange, now: Timestamp) -> Option<u64>;
}

dispatch! {
    /// Records the broker key issued to an agent at enrollment; `Conflict` when the key was
    /// issued before (to any agent).
    fn record_broker_identity(&self, agent_id: &AgentId, public_key: &str, issued_at: Timestamp) -> ();
    /// Revokes every key of the agent not revoked yet; returns the keys revoked now.
    fn revoke_broker_identities(&self, agent_id: &AgentId, at: Timestamp) -> Vec<String>;
    /// Every revoked key, oldest revocation first: what the account JWT must list.
    fn revoked_broker_identities(&self) -> Vec<BrokerIdentity>;
    /// The keys issued to an agent, newest first (the agent page shows them).
    fn broker_identities_of(&self, agent_id: &AgentId) -> Vec<BrokerIdentity>;
    /// How many enrolled agents listed signing key `key_id` as trusted in their last
    /// heartbeat, out of how many (`tutti keys status` during a rotation).
    fn agents_trusting_key(&self, key_id: &KeyId) -> KeyTrust;
}
