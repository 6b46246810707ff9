//! Users and their tokens as stored. A token's value is never stored, only its digest
//! (issued in [`crate::auth`]).

use crate::ControlError;
use crate::db::{Db, now_ms};

/// A user's row.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// 1 for an administrator.
    pub is_admin: i64,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// Disabled, in ms since the epoch, while disabled.
    pub disabled_at: Option<i64>,
}

/// A token's row (never its value).
#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    /// The token's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Created, in ms since the epoch.
    pub created_at: i64,
    /// Expires, in ms since the epoch, if it does.
    pub expires_at: Option<i64>,
    /// Revoked, in ms since the epoch, if it was.
    pub revoked_at: Option<i64>,
    /// The token that minted it.
    pub parent_id: Option<String>,
}

const USER: &str = "SELECT id, name, is_admin, created_at, disabled_at FROM users";

/// Adds a user; a name already taken is a conflict naming it.
pub async fn insert_user(
    db: &Db,
    id: &str,
    name: &str,
    admin: bool,
    runtime: bool,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO users (id, name, is_admin, is_runtime, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(i64::from(admin))
    .bind(i64::from(runtime))
    .bind(now_ms())
    .execute(db.pool())
    .await
    .map_err(ControlError::exists("user", name))?;
    Ok(())
}

/// Up to `fetch` users named after `after`, in name order.
pub async fn list_users(db: &Db, after: &str, fetch: i64) -> Result<Vec<UserRow>, ControlError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{USER} WHERE name > $1 ORDER BY name LIMIT $2"
    )))
    .bind(after)
    .bind(fetch)
    .fetch_all(db.pool())
    .await?)
}

/// The user named `name` (404 when there is none).
pub async fn user_named(db: &Db, name: &str) -> Result<UserRow, ControlError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{USER} WHERE name = $1")))
        .bind(name)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("user '{name}' not found")))
}

/// The id of the user named `name` (404 when there is none).
pub async fn user_id(db: &Db, name: &str) -> Result<String, ControlError> {
    Ok(user_named(db, name).await?.id)
}

/// Disables the user `id` from `at`, or enables it again (`None`).
pub async fn set_disabled(db: &Db, id: &str, at: Option<i64>) -> Result<(), ControlError> {
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The tokens of `user_id`, oldest first.
pub async fn tokens_of(db: &Db, user_id: &str) -> Result<Vec<TokenRow>, ControlError> {
    Ok(sqlx::query_as(
        "SELECT id, name, created_at, expires_at, revoked_at, parent_id FROM tokens \
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?)
}

/// Revokes the token `id` of `user_id` and every token minted from it, down the tree; returns
/// the ids revoked now (the token first), or `None` when the user has no such token not yet
/// revoked.
pub async fn revoke_tree(
    db: &Db,
    user_id: &str,
    id: &str,
) -> Result<Option<Vec<String>>, ControlError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let mut revoked = vec![id.to_string()];
    let mut frontier = vec![id.to_string()];
    while let Some(parent) = frontier.pop() {
        let children: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, revoked_at FROM tokens WHERE parent_id = $1")
                .bind(&parent)
                .fetch_all(&mut *tx)
                .await?;
        for (child, revoked_at) in children {
            if revoked_at.is_none() {
                sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&child)
                    .execute(&mut *tx)
                    .await?;
                revoked.push(child.clone());
            }
            // An already revoked child may still have live children (minted while it was being
            // revoked): walk them too.
            frontier.push(child);
        }
    }
    tx.commit().await?;
    Ok(Some(revoked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::issue_token;

    async fn db() -> Db {
        Db::memory().await.unwrap()
    }

    #[tokio::test]
    async fn users_are_listed_by_name_in_pages_and_names_are_unique() {
        let db = db().await;
        for (i, name) in ["carol", "ada", "bob"].iter().enumerate() {
            insert_user(&db, &format!("u{i}"), name, i == 1, false)
                .await
                .unwrap();
        }
        let error = insert_user(&db, "u9", "ada", false, false)
            .await
            .unwrap_err();
        assert!(matches!(error, ControlError::Conflict(_)), "{error}");
        assert_eq!(error.to_string(), "user 'ada' already exists");
        let first: Vec<String> = list_users(&db, "", 2)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(first, ["ada", "bob"]);
        let rest: Vec<String> = list_users(&db, "bob", 2)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(rest, ["carol"]);
        let ada = user_named(&db, "ada").await.unwrap();
        assert_eq!((ada.id.as_str(), ada.is_admin), ("u1", 1));
        let missing = user_named(&db, "dave").await.unwrap_err();
        assert!(matches!(missing, ControlError::NotFound(_)), "{missing}");
    }

    #[tokio::test]
    async fn a_user_is_disabled_and_enabled_again() {
        let db = db().await;
        insert_user(&db, "u1", "ada", false, false).await.unwrap();
        set_disabled(&db, "u1", Some(42)).await.unwrap();
        assert_eq!(user_named(&db, "ada").await.unwrap().disabled_at, Some(42));
        set_disabled(&db, "u1", None).await.unwrap();
        assert_eq!(user_named(&db, "ada").await.unwrap().disabled_at, None);
    }

    #[tokio::test]
    async fn revoking_a_token_revokes_what_it_minted_and_nothing_else() {
        let db = db().await;
        insert_user(&db, "u1", "ada", false, false).await.unwrap();
        insert_user(&db, "u2", "bob", false, false).await.unwrap();
        let (root, _) = issue_token(&db, "u1", "root", None, None).await.unwrap();
        let (child, _) = issue_token(&db, "u1", "child", None, Some(&root))
            .await
            .unwrap();
        let (grandchild, _) = issue_token(&db, "u1", "grandchild", None, Some(&child))
            .await
            .unwrap();
        let (other, _) = issue_token(&db, "u1", "other", None, None).await.unwrap();
        let (bobs, _) = issue_token(&db, "u2", "bobs", None, None).await.unwrap();
        // Another user's token is not found, and stays live.
        assert_eq!(revoke_tree(&db, "u1", &bobs).await.unwrap(), None);
        let revoked = revoke_tree(&db, "u1", &child).await.unwrap().unwrap();
        assert_eq!(revoked, [child.clone(), grandchild.clone()]);
        // Revoked once: a second revocation finds nothing to revoke.
        assert_eq!(revoke_tree(&db, "u1", &child).await.unwrap(), None);
        let tokens = tokens_of(&db, "u1").await.unwrap();
        let state: Vec<(&str, bool, Option<&str>)> = tokens
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.revoked_at.is_some(),
                    t.parent_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(state.len(), 4);
        for (name, revoked, parent) in state {
            match name {
                "root" | "other" => assert!(!revoked && parent.is_none(), "{name}"),
                "child" => assert!(revoked && parent == Some(root.as_str())),
                "grandchild" => assert!(revoked && parent == Some(child.as_str())),
                _ => panic!("unexpected token {name}"),
            }
        }
        assert!(tokens.iter().any(|t| t.id == other));
        assert!(tokens_of(&db, "u2").await.unwrap()[0].revoked_at.is_none());
    }
}
