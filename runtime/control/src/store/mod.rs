//! What the control plane keeps in its database, typed: a row's JSON columns are parsed here,
//! in one place, and a value that does not parse is a clear error, never a silent default.

pub mod deployments;
pub mod endpoints;
pub mod experiments;
pub mod images;
pub mod manifests;
pub mod models;
pub mod monitoring;
pub mod projects;
pub mod quotas;
pub mod runner;
pub mod runs;
pub mod sessions;
pub mod settings;
pub mod targets;
pub mod teams;
pub mod tracking;
pub mod users;
pub mod workgroups;

pub use settings::DeploymentSettings;

/// For unit tests: a database in memory with team `t1` (`acme`), its work groups `w1` (`lab`)
/// and `w2` (`prod`), and project `p1` (`iris`) in `w1`.
#[cfg(test)]
pub(crate) async fn fixture() -> crate::db::Db {
    let db = crate::db::Db::memory().await.unwrap();
    for sql in [
        "INSERT INTO teams (id, name, description, created_at) VALUES ('t1', 'acme', '', 0)",
        "INSERT INTO workgroups (id, team_id, name, description, created_at) \
         VALUES ('w1', 't1', 'lab', '', 0), ('w2', 't1', 'prod', '', 0)",
        "INSERT INTO projects (id, workgroup_id, name, description, created_at) \
         VALUES ('p1', 'w1', 'iris', '', 0)",
    ] {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }
    db
}
