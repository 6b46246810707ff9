-- Kiln control plane schema, version 1. Written once for SQLite and PostgreSQL: identifiers are
-- TEXT (random, made by Kiln), times are BIGINT milliseconds since the epoch, flags are BIGINT 0/1.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE workgroups (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (team_id, name)
);

CREATE TABLE workgroup_members (
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (workgroup_id, user_id)
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);

CREATE TABLE model_versions (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    run_id TEXT,
    commit_sha TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (model_id, version)
);

CREATE TABLE model_files (
    version_id TEXT NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (version_id, path)
);

CREATE TABLE model_aliases (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version_id TEXT NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
    PRIMARY KEY (model_id, alias)
);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    reference TEXT NOT NULL,
    digest TEXT NOT NULL,
    registry TEXT,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);

-- Deployment names are unique in the installation: they are the {model} of prediction URLs.
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL REFERENCES images (id),
    image_digest TEXT NOT NULL,
    image_reference TEXT NOT NULL,
    settings TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    primary_key_digest TEXT NOT NULL,
    secondary_key_digest TEXT NOT NULL,
    generation BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    status_generation BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
