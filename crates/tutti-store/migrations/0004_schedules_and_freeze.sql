-- Schedules (kind: Schedule manifests). The server validates a manifest and stores its
-- definition as JSON next to the YAML as written (comments included); the store does not
-- interpret the definition. A deleted schedule keeps its row (and its fires) for history.
CREATE TABLE schedules (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    source_yaml TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

-- One row per fire of a schedule. (schedule, fire time) is the key, so a fire recorded by
-- one leader is never repeated by the next after a takeover; run_id is set once the run
-- exists (NULL if the fire was skipped, with the reason).
CREATE TABLE schedule_fires (
    schedule_name TEXT NOT NULL,
    fire_at       BIGINT NOT NULL,
    fired_at      BIGINT NOT NULL,
    run_id        TEXT,
    skipped       TEXT,
    PRIMARY KEY (schedule_name, fire_at)
);

-- Which schedule fired a run (NULL for manual runs), and whether a manual run was created
-- while the fleet was frozen (allowed, but marked).
ALTER TABLE runs ADD COLUMN schedule_name TEXT;
ALTER TABLE runs ADD COLUMN during_freeze BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX runs_schedule ON runs (schedule_name, created_at) WHERE schedule_name IS NOT NULL;
