//! The async surface of [`SqliteStore`]: each method moves its inputs into a blocking task
//! and runs one submodule function in a read or write transaction.
//!
//! The same methods, with the same signatures, exist on [`crate::Store`], which is what
//! callers use; these exist so the enum can dispatch to them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tutti_proto::audit::AuditRecord;
use tutti_proto::event::AgentEvent;
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::{InventorySnapshot, Package};
use tutti_proto::result::RunResult;
use tutti_proto::{AgentId, GroupName, JobId, ResultId, RunId};

use super::{
    SqliteStore, accounts, agents, anomalies, api_tokens, audit, coverage, events, inventory, jobs,
    overview, results, rollouts, runs, schedules, sessions, sql, tokens,
};
use crate::error::StoreResult;
use crate::model::accounts::{
    Account, AccountCredentials, AccountUpdate, ApiToken, NewAccount, NewApiToken, NewSession,
    SessionInfo, TokenAuth,
};
use crate::model::agents::{Agent, AgentQuery, Group, NewAgent};
use crate::model::audit::{AuditEntry, AuditQuery};
use crate::model::coverage::{AgentCoverage, CoverageQuery};
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
use crate::state::RunCounts;

/// How stale a token's `last_used_at` may get before a use is written.
const TOKEN_TOUCH_SECS: i64 = 60;

impl SqliteStore {
    // Projectors.

    /// See [`crate::Store::apply_results`].
    pub async fn apply_results(
        &self,
        batch: Vec<Sequenced<RunResult>>,
    ) -> StoreResult<ApplyOutcome> {
        self.write(move |tx| results::apply_results(tx, &batch))
            .await
    }

    /// See [`crate::Store::apply_events`].
    pub async fn apply_events(
        &self,
        batch: Vec<Sequenced<AgentEvent>>,
    ) -> StoreResult<ApplyOutcome> {
        self.write(move |tx| events::apply_events(tx, &batch)).await
    }

    /// See [`crate::Store::apply_inventory`].
    pub async fn apply_inventory(
        &self,
        batch: Vec<Sequenced<InventorySnapshot>>,
    ) -> StoreResult<ApplyOutcome> {
        self.write(move |tx| inventory::apply_inventory(tx, &batch))
            .await
    }

    /// See [`crate::Store::apply_heartbeats`].
    pub async fn apply_heartbeats(&self, batch: Vec<Heartbeat>) -> StoreResult<ApplyOutcome> {
        self.write(move |tx| agents::apply_heartbeats(tx, &batch))
            .await
    }

    /// See [`crate::Store::apply_audit`].
    pub async fn apply_audit(
        &self,
        batch: Vec<Sequenced<AuditRecord>>,
    ) -> StoreResult<ApplyOutcome> {
        self.write(move |tx| audit::apply_audit(tx, &batch)).await
    }

    /// See [`crate::Store::projector_position`].
    pub async fn projector_position(&self, stream: &str) -> StoreResult<u64> {
        let stream = stream.to_string();
        self.read(move |tx| sql::position(tx, &stream)).await
    }

    /// See [`crate::Store::fleet_overview`].
    pub async fn fleet_overview(
        &self,
        online_since: Timestamp,
        failures_since: Timestamp,
    ) -> StoreResult<FleetOverview> {
        self.read(move |tx| overview::fleet(tx, online_since, failures_since))
            .await
    }

    /// See [`crate::Store::counts_of_runs`].
    pub async fn counts_of_runs(
        &self,
        run_ids: Vec<RunId>,
    ) -> StoreResult<BTreeMap<String, RunCounts>> {
        let ids: Vec<String> = run_ids.iter().map(ToString::to_string).collect();
        self.read(move |tx| overview::run_counts(tx, &ids)).await
    }

    /// See [`crate::Store::list_anomalies`].
    pub async fn list_anomalies(&self, page: Page) -> StoreResult<Paged<Anomaly>> {
        self.read(move |tx| anomalies::list(tx, page)).await
    }

    // Rollouts.

    /// See [`crate::Store::create_rollout`].
    pub async fn create_rollout(
        &self,
        run: NewRun,
        targets: Vec<AgentId>,
        rollout: NewRollout,
    ) -> StoreResult<()> {
        self.write(move |tx| rollouts::create(tx, &run, &targets, &rollout))
            .await
    }

    /// See [`crate::Store::get_rollout`].
    pub async fn get_rollout(&self, run_id: &RunId) -> StoreResult<Rollout> {
        let run_id = *run_id;
        self.read(move |tx| rollouts::get(tx, &run_id)).await
    }

    /// See [`crate::Store::list_active_rollouts`].
    pub async fn list_active_rollouts(&self) -> StoreResult<Vec<Rollout>> {
        self.read(|tx| rollouts::list_active(tx)).await
    }

    /// See [`crate::Store::rollout_wave_counts`].
    pub async fn rollout_wave_counts(&self, run_id: &RunId) -> StoreResult<Vec<WaveCounts>> {
        let run_id = *run_id;
        self.read(move |tx| rollouts::wave_counts(tx, &run_id))
            .await
    }

    /// See [`crate::Store::release_targets`].
    pub async fn release_targets(
        &self,
        run_id: &RunId,
        batch_size: Option<u64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let run_id = *run_id;
        self.write(move |tx| rollouts::release(tx, &run_id, batch_size, now))
            .await
    }

    /// See [`crate::Store::pending_releases`].
    pub async fn pending_releases(&self, run_id: &RunId) -> StoreResult<Vec<PendingRelease>> {
        let run_id = *run_id;
        self.read(move |tx| rollouts::pending(tx, &run_id)).await
    }

    /// See [`crate::Store::set_rollout_state`].
    pub async fn set_rollout_state(
        &self,
        run_id: &RunId,
        change: RolloutChange,
        now: Timestamp,
    ) -> StoreResult<Option<u64>> {
        let run_id = *run_id;
        self.write(move |tx| rollouts::set_state(tx, &run_id, &change, now))
            .await
    }

    // Agents and groups.

    /// See [`crate::Store::enroll_agent`].
    pub async fn enroll_agent(
        &self,
        token_hash: &str,
        agent: NewAgent,
    ) -> StoreResult<Vec<GroupName>> {
        let token_hash = token_hash.to_string();
        self.write(move |tx| agents::enroll_agent(tx, &token_hash, &agent))
            .await
    }

    /// See [`crate::Store::get_agent`].
    pub async fn get_agent(
        &self,
        agent_id: &AgentId,
        online_since: Timestamp,
    ) -> StoreResult<Agent> {
        let agent_id = agent_id.clone();
        self.read(move |tx| agents::get_agent(tx, &agent_id, online_since))
            .await
    }

    /// See [`crate::Store::list_agents`].
    pub async fn list_agents(&self, query: &AgentQuery) -> StoreResult<Paged<Agent>> {
        let query = query.clone();
        self.read(move |tx| agents::list_agents(tx, &query)).await
    }

    /// See [`crate::Store::delete_agent`].
    pub async fn delete_agent(&self, agent_id: &AgentId) -> StoreResult<()> {
        let agent_id = agent_id.clone();
        self.write(move |tx| agents::delete_agent(tx, &agent_id))
            .await
    }

    /// See [`crate::Store::set_agent_groups`].
    pub async fn set_agent_groups(
        &self,
        agent_id: &AgentId,
        groups: Vec<GroupName>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let agent_id = agent_id.clone();
        self.write(move |tx| agents::set_agent_groups(tx, &agent_id, &groups, now))
            .await
    }

    /// See [`crate::Store::agent_targets`].
    pub async fn agent_targets(
        &self,
        agent_id: &AgentId,
        page: Page,
    ) -> StoreResult<Paged<Target>> {
        let agent_id = agent_id.clone();
        self.read(move |tx| runs::agent_targets(tx, &agent_id, page))
            .await
    }

    /// See [`crate::Store::create_group`].
    pub async fn create_group(
        &self,
        group: &GroupName,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (group, description) = (group.clone(), description.to_string());
        self.write(move |tx| agents::create_group(tx, &group, &description, now))
            .await
    }

    /// See [`crate::Store::delete_group`].
    pub async fn delete_group(&self, group: &GroupName) -> StoreResult<()> {
        let group = group.clone();
        self.write(move |tx| agents::delete_group(tx, &group)).await
    }

    /// See [`crate::Store::list_groups`].
    pub async fn list_groups(&self, page: Page) -> StoreResult<Paged<Group>> {
        self.read(move |tx| agents::list_groups(tx, page)).await
    }

    // Jobs.

    /// See [`crate::Store::put_job`].
    pub async fn put_job(
        &self,
        draft: JobDraft,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<PutJobOutcome> {
        let actor = actor.to_string();
        self.write(move |tx| jobs::put_job(tx, &draft, &actor, now))
            .await
    }

    /// See [`crate::Store::get_job`].
    pub async fn get_job(&self, job_id: &JobId) -> StoreResult<Job> {
        let job_id = job_id.clone();
        self.read(move |tx| jobs::get_job(tx, &job_id)).await
    }

    /// See [`crate::Store::list_jobs`].
    pub async fn list_jobs(&self, include_anonymous: bool, page: Page) -> StoreResult<Paged<Job>> {
        self.read(move |tx| jobs::list_jobs(tx, include_anonymous, page))
            .await
    }

    /// See [`crate::Store::list_job_versions`].
    pub async fn list_job_versions(
        &self,
        job_id: &JobId,
        page: Page,
    ) -> StoreResult<Paged<JobVersion>> {
        let job_id = job_id.clone();
        self.read(move |tx| jobs::list_job_versions(tx, &job_id, page))
            .await
    }

    /// See [`crate::Store::get_job_version`].
    pub async fn get_job_version(&self, job_id: &JobId, version: u32) -> StoreResult<JobVersion> {
        let job_id = job_id.clone();
        self.read(move |tx| jobs::get_job_version(tx, &job_id, version))
            .await
    }

    /// See [`crate::Store::delete_job`].
    pub async fn delete_job(&self, job_id: &JobId, now: Timestamp) -> StoreResult<()> {
        let job_id = job_id.clone();
        self.write(move |tx| jobs::delete_job(tx, &job_id, now))
            .await
    }

    /// See [`crate::Store::revoke_job`].
    pub async fn revoke_job(
        &self,
        job_id: &JobId,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (job_id, actor) = (job_id.clone(), actor.to_string());
        self.write(move |tx| jobs::revoke_job(tx, &job_id, &actor, now))
            .await
    }

    // Runs and results.

    /// See [`crate::Store::create_run`].
    pub async fn create_run(&self, run: NewRun, targets: Vec<AgentId>) -> StoreResult<()> {
        self.write(move |tx| runs::create_run(tx, &run, &targets))
            .await
    }

    /// See [`crate::Store::set_run_command_seq`].
    pub async fn set_run_command_seq(&self, published: CommandPublished) -> StoreResult<()> {
        self.write(move |tx| runs::set_run_command_seq(tx, &published))
            .await
    }

    /// See [`crate::Store::kill_run`].
    pub async fn kill_run(
        &self,
        run_id: &RunId,
        killed_by: &str,
        at: Timestamp,
    ) -> StoreResult<u64> {
        let (run_id, killed_by) = (*run_id, killed_by.to_string());
        self.write(move |tx| runs::kill_run(tx, &run_id, &killed_by, at))
            .await
    }

    /// See [`crate::Store::expire_targets`].
    pub async fn expire_targets(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |tx| runs::expire_targets(tx, now)).await
    }

    /// See [`crate::Store::get_run`].
    pub async fn get_run(&self, run_id: &RunId) -> StoreResult<RunDetail> {
        let run_id = *run_id;
        self.read(move |tx| runs::get_run(tx, &run_id)).await
    }

    /// See [`crate::Store::list_runs`].
    pub async fn list_runs(&self, query: &RunQuery) -> StoreResult<Paged<Run>> {
        let query = query.clone();
        self.read(move |tx| runs::list_runs(tx, &query)).await
    }

    /// See [`crate::Store::list_targets`].
    pub async fn list_targets(
        &self,
        run_id: &RunId,
        query: &TargetQuery,
    ) -> StoreResult<Paged<Target>> {
        let (run_id, query) = (*run_id, query.clone());
        self.read(move |tx| runs::list_targets(tx, &run_id, &query))
            .await
    }

    /// See [`crate::Store::list_results`].
    pub async fn list_results(
        &self,
        run_id: &RunId,
        agent_id: Option<&AgentId>,
        page: Page,
    ) -> StoreResult<Paged<StoredResult>> {
        let (run_id, agent_id) = (*run_id, agent_id.cloned());
        self.read(move |tx| results::list_results(tx, &run_id, agent_id.as_ref(), page))
            .await
    }

    /// See [`crate::Store::get_result`].
    pub async fn get_result(&self, result_id: &ResultId) -> StoreResult<StoredResult> {
        let result_id = result_id.clone();
        self.read(move |tx| results::get_result(tx, &result_id))
            .await
    }

    // Inventory.

    /// See [`crate::Store::get_inventory`].
    pub async fn get_inventory(&self, agent_id: &AgentId) -> StoreResult<AgentInventory> {
        let agent_id = agent_id.clone();
        self.read(move |tx| inventory::get_inventory(tx, &agent_id))
            .await
    }

    /// See [`crate::Store::list_agent_packages`].
    pub async fn list_agent_packages(
        &self,
        agent_id: &AgentId,
        search: Option<&str>,
        page: Page,
    ) -> StoreResult<Paged<Package>> {
        let (agent_id, search) = (agent_id.clone(), search.map(str::to_string));
        self.read(move |tx| inventory::list_agent_packages(tx, &agent_id, search.as_deref(), page))
            .await
    }

    /// See [`crate::Store::list_inventory_changes`].
    pub async fn list_inventory_changes(
        &self,
        agent_id: &AgentId,
        page: Page,
    ) -> StoreResult<Paged<InventoryChange>> {
        let agent_id = agent_id.clone();
        self.read(move |tx| inventory::list_inventory_changes(tx, &agent_id, page))
            .await
    }

    /// See [`crate::Store::search_packages`].
    pub async fn search_packages(&self, query: &PackageQuery) -> StoreResult<Paged<PackageHit>> {
        let query = query.clone();
        self.read(move |tx| inventory::search_packages(tx, &query))
            .await
    }

    // Audit and enrollment tokens.

    /// See [`crate::Store::query_audit`].
    pub async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Paged<AuditEntry>> {
        let query = query.clone();
        self.read(move |tx| audit::query_audit(tx, &query)).await
    }

    /// See [`crate::Store::create_enrollment_token`].
    pub async fn create_enrollment_token(&self, token: NewEnrollmentToken) -> StoreResult<()> {
        self.write(move |tx| tokens::create(tx, &token)).await
    }

    /// See [`crate::Store::list_enrollment_tokens`].
    pub async fn list_enrollment_tokens(&self, page: Page) -> StoreResult<Paged<EnrollmentToken>> {
        self.read(move |tx| tokens::list(tx, page)).await
    }

    /// See [`crate::Store::revoke_enrollment_token`].
    pub async fn revoke_enrollment_token(&self, token_id: &str, now: Timestamp) -> StoreResult<()> {
        let token_id = token_id.to_string();
        self.write(move |tx| tokens::revoke(tx, &token_id, now))
            .await
    }

    // Accounts, sessions and API tokens.

    /// See [`crate::Store::count_accounts`].
    pub async fn count_accounts(&self) -> StoreResult<u64> {
        self.read(|tx| accounts::count(tx)).await
    }

    /// See [`crate::Store::create_account`].
    pub async fn create_account(&self, account: NewAccount) -> StoreResult<()> {
        self.write(move |tx| accounts::create(tx, &account)).await
    }

    /// See [`crate::Store::get_account`].
    pub async fn get_account(&self, username: &str) -> StoreResult<Account> {
        let username = username.to_string();
        self.read(move |tx| accounts::get(tx, &username)).await
    }

    /// See [`crate::Store::account_credentials`].
    pub async fn account_credentials(&self, username: &str) -> StoreResult<AccountCredentials> {
        let username = username.to_string();
        self.read(move |tx| accounts::credentials(tx, &username))
            .await
    }

    /// See [`crate::Store::list_accounts`].
    pub async fn list_accounts(&self, page: Page) -> StoreResult<Paged<Account>> {
        self.read(move |tx| accounts::list(tx, page)).await
    }

    /// See [`crate::Store::update_account`].
    pub async fn update_account(
        &self,
        username: &str,
        update: AccountUpdate,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let username = username.to_string();
        self.write(move |tx| accounts::update(tx, &username, &update, now))
            .await
    }

    /// See [`crate::Store::set_password`].
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: String,
        must_change: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let username = username.to_string();
        self.write(move |tx| {
            accounts::set_password(tx, &username, &password_hash, must_change, now)
        })
        .await
    }

    /// See [`crate::Store::delete_sessions`].
    pub async fn delete_sessions(
        &self,
        username: &str,
        except_session_hash: Option<String>,
    ) -> StoreResult<u64> {
        let username = username.to_string();
        self.write(move |tx| {
            sessions::delete_for_account(tx, &username, except_session_hash.as_deref())
        })
        .await
    }

    /// See [`crate::Store::set_totp_pending`].
    pub async fn set_totp_pending(
        &self,
        username: &str,
        secret: Option<String>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let username = username.to_string();
        self.write(move |tx| accounts::set_totp_pending(tx, &username, secret.as_deref(), now))
            .await
    }

    /// See [`crate::Store::enable_totp`].
    pub async fn enable_totp(
        &self,
        username: &str,
        secret: String,
        recovery_code_hashes: Vec<String>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let username = username.to_string();
        self.write(move |tx| {
            accounts::enable_totp(tx, &username, &secret, &recovery_code_hashes, now)
        })
        .await
    }

    /// See [`crate::Store::disable_totp`].
    pub async fn disable_totp(&self, username: &str, now: Timestamp) -> StoreResult<()> {
        let username = username.to_string();
        self.write(move |tx| accounts::disable_totp(tx, &username, now))
            .await
    }

    /// See [`crate::Store::use_recovery_code`].
    pub async fn use_recovery_code(
        &self,
        username: &str,
        code_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (username, code_hash) = (username.to_string(), code_hash.to_string());
        self.write(move |tx| accounts::use_recovery_code(tx, &username, &code_hash, now))
            .await
    }

    /// See [`crate::Store::unused_recovery_codes`].
    pub async fn unused_recovery_codes(&self, username: &str) -> StoreResult<u64> {
        let username = username.to_string();
        self.read(move |tx| accounts::unused_recovery_codes(tx, &username))
            .await
    }

    /// See [`crate::Store::create_session`].
    pub async fn create_session(&self, session: NewSession) -> StoreResult<()> {
        self.write(move |tx| sessions::create(tx, &session)).await
    }

    /// See [`crate::Store::get_session`].
    pub async fn get_session(
        &self,
        session_hash: &str,
        now: Timestamp,
    ) -> StoreResult<SessionInfo> {
        let session_hash = session_hash.to_string();
        self.read(move |tx| sessions::get(tx, &session_hash, now))
            .await
    }

    /// See [`crate::Store::touch_session`].
    pub async fn touch_session(&self, session_hash: &str, now: Timestamp) -> StoreResult<()> {
        let session_hash = session_hash.to_string();
        self.write(move |tx| sessions::touch(tx, &session_hash, now))
            .await
    }

    /// See [`crate::Store::set_session_mfa_passed`].
    pub async fn set_session_mfa_passed(&self, session_hash: &str) -> StoreResult<()> {
        let session_hash = session_hash.to_string();
        self.write(move |tx| sessions::set_mfa_passed(tx, &session_hash))
            .await
    }

    /// See [`crate::Store::delete_session`].
    pub async fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        let session_hash = session_hash.to_string();
        self.write(move |tx| sessions::delete(tx, &session_hash))
            .await
    }

    /// See [`crate::Store::delete_expired_sessions`].
    pub async fn delete_expired_sessions(
        &self,
        now: Timestamp,
        idle_before: Timestamp,
    ) -> StoreResult<u64> {
        self.write(move |tx| sessions::delete_expired(tx, now, idle_before))
            .await
    }

    /// See [`crate::Store::create_api_token`].
    pub async fn create_api_token(&self, token: NewApiToken) -> StoreResult<()> {
        self.write(move |tx| api_tokens::create(tx, &token)).await
    }

    /// See [`crate::Store::authenticate_api_token`].
    pub async fn authenticate_api_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<TokenAuth> {
        let token_hash = token_hash.to_string();
        let mut auth = self
            .read(move |tx| api_tokens::find_valid(tx, &token_hash, now))
            .await?;
        // Every request of a script carries its token: record a use at most once a minute,
        // so authentication stays a read and does not queue behind the single writer.
        let stale = auth.token.last_used_at.is_none_or(|at| {
            now.duration_since(at) >= jiff::SignedDuration::from_secs(TOKEN_TOUCH_SECS)
        });
        if stale {
            let token_id = auth.token.token_id.clone();
            self.write(move |tx| api_tokens::touch(tx, &token_id, now))
                .await?;
            auth.token.last_used_at = Some(now);
        }
        Ok(auth)
    }

    /// See [`crate::Store::list_api_tokens`].
    pub async fn list_api_tokens(
        &self,
        username: Option<&str>,
        page: Page,
    ) -> StoreResult<Paged<ApiToken>> {
        let username = username.map(str::to_string);
        self.read(move |tx| api_tokens::list(tx, username.as_deref(), page))
            .await
    }

    /// See [`crate::Store::get_api_token`].
    pub async fn get_api_token(&self, token_id: &str) -> StoreResult<ApiToken> {
        let token_id = token_id.to_string();
        self.read(move |tx| api_tokens::get(tx, &token_id)).await
    }

    /// See [`crate::Store::revoke_api_token`].
    pub async fn revoke_api_token(&self, token_id: &str, now: Timestamp) -> StoreResult<()> {
        let token_id = token_id.to_string();
        self.write(move |tx| api_tokens::revoke(tx, &token_id, now))
            .await
    }

    /// See [`crate::Store::put_schedule`].
    pub async fn put_schedule(
        &self,
        draft: ScheduleDraft,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<PutScheduleOutcome> {
        let actor = actor.to_string();
        self.write(move |tx| schedules::put(tx, &draft, &actor, now))
            .await
    }

    /// See [`crate::Store::get_schedule`].
    pub async fn get_schedule(&self, name: &str) -> StoreResult<Schedule> {
        let name = name.to_string();
        self.read(move |tx| schedules::get(tx, &name)).await
    }

    /// See [`crate::Store::list_schedules`].
    pub async fn list_schedules(
        &self,
        only_enabled: bool,
        page: Page,
    ) -> StoreResult<Paged<Schedule>> {
        self.read(move |tx| schedules::list(tx, only_enabled, page))
            .await
    }

    /// See [`crate::Store::set_schedule_enabled`].
    pub async fn set_schedule_enabled(
        &self,
        name: &str,
        enabled: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |tx| schedules::set_enabled(tx, &name, enabled, now))
            .await
    }

    /// See [`crate::Store::delete_schedule`].
    pub async fn delete_schedule(&self, name: &str, now: Timestamp) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |tx| schedules::delete(tx, &name, now))
            .await
    }

    /// See [`crate::Store::claim_schedule_fire`].
    pub async fn claim_schedule_fire(
        &self,
        name: &str,
        fire_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |tx| schedules::claim_fire(tx, &name, fire_at, now))
            .await
    }

    /// See [`crate::Store::settle_schedule_fire`].
    pub async fn settle_schedule_fire(
        &self,
        name: &str,
        fire_at: Timestamp,
        run_id: Option<String>,
        skipped: Option<String>,
    ) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |tx| {
            schedules::settle_fire(tx, &name, fire_at, run_id.as_deref(), skipped.as_deref())
        })
        .await
    }

    /// See [`crate::Store::list_schedule_fires`].
    pub async fn list_schedule_fires(
        &self,
        name: &str,
        page: Page,
    ) -> StoreResult<Paged<ScheduleFire>> {
        let name = name.to_string();
        self.read(move |tx| schedules::list_fires(tx, &name, page))
            .await
    }

    /// See [`crate::Store::schedule_coverage`].
    pub async fn schedule_coverage(
        &self,
        query: &CoverageQuery,
    ) -> StoreResult<Vec<AgentCoverage>> {
        let query = query.clone();
        self.read(move |tx| coverage::coverage(tx, &query)).await
    }
}
