-- Experiments (named entry points of a project) and runs (records; execution comes with the
-- executor plugins).

CREATE TABLE experiments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    script TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]',
    target TEXT NOT NULL DEFAULT 'local',
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    commit_sha TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    exit_code BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (experiment_id, number)
);
