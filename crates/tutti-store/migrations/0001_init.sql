-- tutti-store schema, version 1.
--
-- Conventions (see the crate README for one section per table):
-- * Every timestamp is BIGINT unix milliseconds UTC, named *_at. Never text.
-- * JSON documents are TEXT holding serde_json output.
-- * Booleans are BOOLEAN holding 0 or 1.
-- * Ids are TEXT in their canonical lowercase form from tutti-proto.
-- * Upserts use ON CONFLICT, which SQLite and Postgres share.
-- * SQLite-only idioms are used where they matter for ingest speed and marked "SQLite:":
--   INTEGER PRIMARY KEY (the rowid itself, BIGINT in Postgres) and WITHOUT ROWID.
-- * Target and run states are not CHECK-constrained: a later migration may add a state
--   (rollout waves will need one) without rebuilding the table; TargetState in Rust is the
--   authority on which values exist.
-- Once shipped this file is never edited; changes go into a new migration.

CREATE TABLE agents (
    agent_id          TEXT PRIMARY KEY,
    hostname          TEXT NOT NULL DEFAULT '',
    os                TEXT NOT NULL DEFAULT '',
    os_version        TEXT NOT NULL DEFAULT '',
    arch              TEXT NOT NULL DEFAULT '',
    version           TEXT NOT NULL DEFAULT '',
    -- NULL when the agent was first seen on the bus rather than through enrollment.
    enrolled_at       BIGINT,
    first_seen_at     BIGINT NOT NULL,
    last_heartbeat_at BIGINT,
    uptime_secs       BIGINT,
    rss_bytes         BIGINT,
    cpu_percent       DOUBLE PRECISION,
    queue_depth       BIGINT,
    outbox_depth      BIGINT,
    -- Last TUTTI_COMMANDS sequence the agent reported as processed.
    command_cursor    BIGINT
);
CREATE INDEX agents_hostname ON agents (hostname);
CREATE INDEX agents_last_heartbeat ON agents (last_heartbeat_at);
CREATE INDEX agents_os ON agents (os);

CREATE TABLE groups (
    group_name  TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE agent_groups (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES groups (group_name) ON DELETE CASCADE,
    -- Order of the agent's groups: configuration layers apply in this order.
    position   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, group_name)
);
CREATE INDEX agent_groups_group ON agent_groups (group_name, agent_id);

CREATE TABLE jobs (
    job_id      TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    source_yaml TEXT NOT NULL,
    -- Ad-hoc scripts become anonymous jobs; lists hide them unless asked.
    anonymous   BOOLEAN NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_by  TEXT,
    -- Soft delete: runs keep pointing at the versions they ran.
    deleted_at  BIGINT
);

CREATE TABLE job_versions (
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    version     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    source_yaml TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (job_id, version)
);

CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,
    job_id       TEXT NOT NULL,
    job_version  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    -- What the operator asked for (all / groups / agents), before resolution.
    targets_spec TEXT NOT NULL,
    deadline     BIGINT,
    scheduled    BOOLEAN NOT NULL DEFAULT 0,
    -- Derived from run_targets by one statement after every change (runs::refresh_status).
    status       TEXT NOT NULL,
    killed_at    BIGINT,
    killed_by    TEXT,
    FOREIGN KEY (job_id, job_version) REFERENCES job_versions (job_id, version)
);
CREATE INDEX runs_created ON runs (created_at, run_id);
CREATE INDEX runs_job ON runs (job_id, created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_deadline ON runs (deadline) WHERE deadline IS NOT NULL;

-- One row per command message published for a run: the commands-stream sequence is what
-- a gap report from an agent is compared against.
CREATE TABLE run_commands (
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    subject      TEXT NOT NULL,
    command_id   TEXT NOT NULL,
    stream_seq   BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, subject)
);

CREATE TABLE run_targets (
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    -- No foreign key to agents: deleting an agent keeps the history of what it ran.
    agent_id     TEXT NOT NULL,
    state        TEXT NOT NULL,
    -- Skip reason, or why the server decided the state (missed, expired).
    reason       TEXT,
    exit_code    BIGINT,
    -- Highest TUTTI_COMMANDS sequence of a command that delivers this run to this agent.
    command_seq  BIGINT,
    queued_at    BIGINT NOT NULL,
    delivered_at BIGINT,
    started_at   BIGINT,
    finished_at  BIGINT,
    PRIMARY KEY (run_id, agent_id)
) WITHOUT ROWID; -- SQLite: one B-tree keyed by (run, agent); every result updates a row here.
-- Not on state: a result's UPDATE then leaves this index alone (the ingest benchmark).
CREATE INDEX run_targets_agent ON run_targets (agent_id, command_seq);
CREATE INDEX run_targets_agent_recent ON run_targets (agent_id, queued_at);

CREATE TABLE results (
    result_id            TEXT PRIMARY KEY,
    run_id               TEXT NOT NULL,
    agent_id             TEXT NOT NULL,
    stream_seq           BIGINT NOT NULL,
    command_id           TEXT NOT NULL,
    status               TEXT NOT NULL,
    skip_reason          TEXT,
    exit_code            BIGINT,
    stdout_inline        TEXT NOT NULL,
    stdout_total_bytes   BIGINT NOT NULL,
    stdout_dropped_bytes BIGINT,
    -- ObjectRef JSON: stored as received, resolved by the server when the detail is read.
    stdout_object        TEXT,
    stderr_inline        TEXT NOT NULL,
    stderr_total_bytes   BIGINT NOT NULL,
    stderr_dropped_bytes BIGINT,
    stderr_object        TEXT,
    started_at           BIGINT,
    finished_at          BIGINT NOT NULL
);
-- No index on (run_id, agent_id) and no foreign key to run_targets: result_id is
-- "<run_id>:<agent_id>" (inconsistent ids never get here), so the primary key already
-- orders a run's results by agent, and the insert itself checks that the target exists.
-- Each index less is a B-tree write less per result.

-- Every agent event, run-related or not (refused, gap_detected).
CREATE TABLE run_events (
    stream_seq INTEGER PRIMARY KEY, -- SQLite: the rowid.
    agent_id   TEXT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    run_id     TEXT,
    command_id TEXT,
    -- The event's whole kind as JSON (gap range, refusal reason, command sequence).
    detail     TEXT NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, stream_seq);
CREATE INDEX run_events_agent ON run_events (agent_id, stream_seq);

-- Messages that could not be applied: a result for an unknown run or from an agent the run
-- did not target, ids that do not agree. Recorded, never fatal.
CREATE TABLE anomalies (
    stream      TEXT NOT NULL,
    stream_seq  BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    run_id      TEXT,
    at          BIGINT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (stream, stream_seq)
);
CREATE INDEX anomalies_at ON anomalies (at);

CREATE TABLE inventory_current (
    agent_id   TEXT PRIMARY KEY REFERENCES agents (agent_id) ON DELETE CASCADE,
    -- Sequence of the snapshot applied last; older or replayed snapshots are ignored.
    stream_seq BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    facts      TEXT NOT NULL
);

CREATE TABLE inventory_packages (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    manager  TEXT NOT NULL,
    name     TEXT NOT NULL,
    arch     TEXT NOT NULL,
    version  TEXT NOT NULL,
    PRIMARY KEY (agent_id, manager, name, arch)
);
CREATE INDEX inventory_packages_name ON inventory_packages (name, version);

CREATE TABLE inventory_changes (
    agent_id   TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
    stream_seq BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    item_type  TEXT NOT NULL,
    -- A package is named manager/name/arch; a fact by its field name.
    name       TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    PRIMARY KEY (agent_id, stream_seq, item_type, name)
);
CREATE INDEX inventory_changes_at ON inventory_changes (agent_id, at);

CREATE TABLE audit_log (
    stream_seq INTEGER PRIMARY KEY, -- SQLite: the rowid.
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    summary    TEXT NOT NULL,
    source     TEXT,
    outcome    TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, stream_seq);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_target ON audit_log (target, at);

CREATE TABLE enrollment_tokens (
    token_id   TEXT PRIMARY KEY,
    -- The server hashes the secret; the store never sees it.
    token_hash TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    uses_left  BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Highest stream sequence each projector has committed, for /metrics and lag reporting.
-- Idempotency does not rely on it: every table above de-duplicates on its own key.
CREATE TABLE projector_positions (
    stream     TEXT PRIMARY KEY,
    stream_seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
