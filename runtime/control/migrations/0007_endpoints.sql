-- Endpoints: a stable prediction URL with its own keys, routing to deployments of its work group
-- by integer weights (settings: traffic, mirror, rollback policy, and the traffic before the last
-- change, which an automatic rollback returns to). Their events: traffic changes and rollbacks.

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    public BIGINT NOT NULL DEFAULT 0,
    primary_key_digest TEXT NOT NULL,
    secondary_key_digest TEXT NOT NULL,
    settings TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE endpoint_events (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX endpoint_events_by_endpoint ON endpoint_events (endpoint_id, created_at);
