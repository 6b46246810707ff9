-- Users an installation admin disabled: their tokens answer 401 until they are enabled again.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- Runtime nodes' users: their tokens reach the runtime routes (desired state, status, drift)
-- and nothing else.
ALTER TABLE users ADD COLUMN is_runtime BIGINT NOT NULL DEFAULT 0;

-- Which work groups brought an image into the shared local store (built it from a manifest, or
-- pulled it from a registry with their own access). A digest some work group claimed resolves
-- only for the work groups that claimed it; one nobody claimed was put there by the
-- installation (`kiln image build --store`) and is shared, as built-in scorers are.
CREATE TABLE store_claims (
    digest TEXT NOT NULL,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (digest, workgroup_id)
);

-- Per work group quotas set by installation admins; a NULL column takes the installation's
-- default.
CREATE TABLE workgroup_quotas (
    workgroup_id TEXT PRIMARY KEY REFERENCES workgroups (id) ON DELETE CASCADE,
    deployments BIGINT,
    instances BIGINT,
    memory_mb BIGINT,
    deadline_ms BIGINT,
    updated_at BIGINT NOT NULL
);
