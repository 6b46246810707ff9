//! Web UI sessions: each row is one signed-in browser, by the SHA-256 of its cookie's secret.

use crate::ControlError;
use crate::db::Db;

/// A session as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    /// The token it was opened with.
    pub token_id: String,
    /// The form token its pages carry.
    pub csrf: String,
    /// When it ends (ms since the epoch).
    pub expires_at: i64,
}

/// Keeps a new session, and drops those that ended before `now`.
pub async fn open(
    db: &Db,
    id: &str,
    token_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "INSERT INTO web_sessions (id, token_id, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(token_id)
    .bind(csrf)
    .bind(now)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The session with this id, if it is kept.
pub async fn find(db: &Db, id: &str) -> Result<Option<SessionRow>, ControlError> {
    Ok(
        sqlx::query_as("SELECT token_id, csrf, expires_at FROM web_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Ends a session.
pub async fn close(db: &Db, id: &str) -> Result<(), ControlError> {
    sqlx::query("DELETE FROM web_sessions WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_open_find_and_close() {
        let db = crate::store::fixture().await;
        sqlx::query(
            "INSERT INTO users (id, name, is_admin, created_at) VALUES ('u1', 'ada', 0, 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, digest, created_at) \
             VALUES ('k1', 'u1', 'web', 'd1', 0)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        open(&db, "s-old", "k1", "c0", 0, 10).await.unwrap();
        open(&db, "s1", "k1", "c1", 20, 1_000).await.unwrap();
        // Opening a session swept the one that had ended.
        assert!(find(&db, "s-old").await.unwrap().is_none());
        let row = find(&db, "s1").await.unwrap().unwrap();
        assert_eq!((row.token_id.as_str(), row.csrf.as_str()), ("k1", "c1"));
        assert_eq!(row.expires_at, 1_000);
        close(&db, "s1").await.unwrap();
        assert!(find(&db, "s1").await.unwrap().is_none());
    }
}
