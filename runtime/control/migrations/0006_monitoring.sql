-- Drift monitoring: the reports runtimes send when a window closes (the last few per deployment,
-- and the cumulative one), and a deployment's events (drift state changes, retraining runs).

CREATE TABLE deployment_drift (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);

CREATE TABLE deployment_events (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    run_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment_id, created_at);
