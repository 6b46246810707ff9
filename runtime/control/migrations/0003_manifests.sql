-- Manifests: the recipe of an image, over a registered model version's files.

CREATE TABLE manifests (
    id TEXT PRIMARY KEY,
    workgroup_id TEXT NOT NULL REFERENCES workgroups (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    model_version_id TEXT NOT NULL REFERENCES model_versions (id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workgroup_id, name)
);

ALTER TABLE images ADD COLUMN manifest_id TEXT REFERENCES manifests (id);
