-- Execution targets and environments (a named bundle: registry and its credentials, artifact
-- store, execution targets, runtime nodes). Secrets are stored sealed, never in the clear.

CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    registry TEXT,
    registry_username TEXT,
    registry_password_sealed TEXT,
    artifact_store TEXT,
    targets TEXT NOT NULL DEFAULT '[]',
    runtime_nodes TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);
