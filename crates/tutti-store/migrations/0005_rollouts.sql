-- Rollouts: a run released to its targets in waves ("5%, then half, then everyone"), with
-- a failure threshold checked between waves. The server plans the waves and decides; the
-- store keeps the plan, the rollout's state and which targets were released, so a
-- restarted server continues where the last one stopped.
CREATE TABLE rollouts (
    run_id          TEXT PRIMARY KEY REFERENCES runs (run_id),
    -- The plan as the server wrote it (waves as asked and as resolved, wait, thresholds,
    -- batch size); the store does not interpret it.
    plan            TEXT NOT NULL,
    n_waves         BIGINT NOT NULL,
    -- running | waiting | paused | aborted | done (RolloutState in Rust).
    state           TEXT NOT NULL,
    -- 1-based; the wave whose targets are being released.
    current_wave    BIGINT NOT NULL,
    wave_started_at BIGINT NOT NULL,
    -- Set while waiting: when the next wave may be released.
    next_wave_at    BIGINT,
    -- Why it is paused, aborted or done.
    reason          TEXT,
    -- Whether resume is allowed (an operator's pause or abort; not an automatic abort).
    resumable       BOOLEAN NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state);

-- The wave of a target (NULL for runs without a rollout), when it was released to its
-- agent, and the command id it was (or will be) published with. The id is chosen in the
-- same transaction that releases the target, so publishing again after a crash reuses it
-- and the stream and the agent de-duplicate it. A target with a wave and no released_at
-- is "held": stored `queued`, but no command for it exists yet.
ALTER TABLE run_targets ADD COLUMN wave BIGINT;
ALTER TABLE run_targets ADD COLUMN released_at BIGINT;
ALTER TABLE run_targets ADD COLUMN release_command_id TEXT;
