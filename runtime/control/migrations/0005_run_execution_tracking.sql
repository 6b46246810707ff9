-- Runs executed by executor plugins (their handle, the process that owns them, their log) and
-- tracking of any run: parameters, metrics, tags. Runs made by a tracking client (the mlflow
-- package) are not executed by Kiln: `executed` is 0.

ALTER TABLE runs ADD COLUMN script TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN executed BIGINT NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN handle TEXT;
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE runs ADD COLUMN timeout_s BIGINT;
ALTER TABLE runs ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE runs ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN log_base BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN token_id TEXT;
CREATE INDEX runs_status ON runs (status);

-- A run's token acts only in its run's work group.
ALTER TABLE tokens ADD COLUMN workgroup_id TEXT;

CREATE TABLE run_params (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE run_tags (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- NaN is stored as is_nan = 1 with value 0, and infinities as the largest finite doubles, as
-- MLflow stores them.
CREATE TABLE run_metrics (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan BIGINT NOT NULL DEFAULT 0,
    step BIGINT NOT NULL DEFAULT 0,
    timestamp BIGINT NOT NULL
);
CREATE INDEX run_metrics_key ON run_metrics (run_id, key, step, timestamp);

-- Where a model version's files came from, as its registrar named it (an MLflow source URI).
ALTER TABLE model_versions ADD COLUMN source TEXT NOT NULL DEFAULT '';

-- The container image an environment gives its runs on docker targets, and the environment a run
-- names (its registry credentials pull that image).
ALTER TABLE environments ADD COLUMN run_image TEXT;
ALTER TABLE runs ADD COLUMN environment TEXT NOT NULL DEFAULT '';
