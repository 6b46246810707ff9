//! Users and tokens: who may be created, what a token may live for, what a row shows.

use super::time;
use crate::ControlError;
use crate::names::check_name;
use crate::store::users::{TokenRow, UserRow};
use kiln_api::manage::users::{NewToken, NewUser, Token, User};

/// The longest a token may be asked to live: ten years.
const MAX_TOKEN_SECONDS: u64 = 10 * 365 * 86_400;

/// Checks a new user: a valid name, and an admin or a runtime node's user, not both.
pub fn check_new_user(user: &NewUser) -> Result<(), ControlError> {
    check_name("user", &user.name)?;
    if user.admin && user.runtime {
        return Err(ControlError::Invalid(
            "a user is an admin or a runtime node's, not both".into(),
        ));
    }
    Ok(())
}

/// Whether the caller may set `disabled` on the user `target`: nobody disables themself
/// (another admin can), so an installation never locks its last admin out by mistake.
pub fn check_disable(disabled: bool, target: &str, caller: &str) -> Result<(), ControlError> {
    if disabled && target == caller {
        return Err(ControlError::Invalid(
            "you cannot disable yourself: another admin can".into(),
        ));
    }
    Ok(())
}

/// When a new token expires (ms since the epoch; `None`: when revoked), given what was asked
/// and when the token creating it expires: a token mints only tokens that end no later than
/// itself, so one asked for without a lifetime ends with its parent.
pub fn token_expiry(
    asked: &NewToken,
    parent_expires: Option<i64>,
    now: i64,
) -> Result<Option<i64>, ControlError> {
    check_name("token", &asked.name)?;
    let expires_at = match asked.expires_in_seconds {
        Some(0) => {
            return Err(ControlError::Invalid(
                "expires_in_seconds must be positive".into(),
            ));
        }
        Some(s) if s > MAX_TOKEN_SECONDS => {
            return Err(ControlError::Invalid(
                "expires_in_seconds is at most ten years".into(),
            ));
        }
        Some(s) => Some(now + (s as i64) * 1000),
        None => None,
    };
    match (parent_expires, expires_at) {
        (Some(limit), Some(wanted)) if wanted > limit => Err(ControlError::Invalid(format!(
            "a token cannot outlive the token that creates it (which expires at {}): ask for \
             at most {} seconds",
            time(limit),
            ((limit - now) / 1000).max(0)
        ))),
        (Some(limit), None) => Ok(Some(limit)),
        (_, wanted) => Ok(wanted),
    }
}

/// A user as the API shows it.
pub fn user(row: UserRow) -> User {
    User {
        name: row.name,
        admin: row.is_admin != 0,
        created: time(row.created_at),
        disabled: row.disabled_at.map(time),
    }
}

/// A token as the API lists it (never its value).
pub fn token(row: TokenRow) -> Token {
    Token {
        id: row.id,
        name: row.name,
        created: time(row.created_at),
        expires: row.expires_at.map(time),
        revoked: row.revoked_at.map(time),
        parent: row.parent_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(seconds: Option<u64>) -> NewToken {
        NewToken {
            name: "ci".into(),
            expires_in_seconds: seconds,
        }
    }

    #[test]
    fn a_token_ends_no_later_than_the_token_that_creates_it() {
        let now = 1_000_000;
        // No parent limit: as asked, or never.
        assert_eq!(token_expiry(&asked(None), None, now).unwrap(), None);
        assert_eq!(
            token_expiry(&asked(Some(60)), None, now).unwrap(),
            Some(now + 60_000)
        );
        // A parent ending in 100 s: a shorter life is kept, none becomes the parent's end.
        let parent = Some(now + 100_000);
        assert_eq!(
            token_expiry(&asked(Some(99)), parent, now).unwrap(),
            Some(now + 99_000)
        );
        assert_eq!(token_expiry(&asked(None), parent, now).unwrap(), parent);
        let error = token_expiry(&asked(Some(101)), parent, now)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 100 seconds"), "{error}");
        // A parent already expired (it could not call, but the rule holds): at most 0.
        let error = token_expiry(&asked(Some(1)), Some(now - 5_000), now)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 0 seconds"), "{error}");
    }

    #[test]
    fn lifetimes_and_names_out_of_bounds_are_refused() {
        for (request, needle) in [
            (asked(Some(0)), "must be positive"),
            (asked(Some(MAX_TOKEN_SECONDS + 1)), "at most ten years"),
            (
                NewToken {
                    name: "../x".into(),
                    expires_in_seconds: None,
                },
                "token",
            ),
        ] {
            let error = token_expiry(&request, None, 0).unwrap_err();
            assert!(matches!(error, ControlError::Invalid(_)), "{error}");
            assert!(error.to_string().contains(needle), "{error}");
        }
        assert!(token_expiry(&asked(Some(MAX_TOKEN_SECONDS)), None, 0).is_ok());
    }

    #[test]
    fn a_user_is_an_admin_or_a_runtime_nodes_not_both() {
        let user = |admin, runtime| NewUser {
            name: "ada".into(),
            admin,
            runtime,
        };
        assert!(check_new_user(&user(true, false)).is_ok());
        assert!(check_new_user(&user(false, true)).is_ok());
        assert!(check_new_user(&user(true, true)).is_err());
        assert!(
            check_new_user(&NewUser {
                name: String::new(),
                ..NewUser::default()
            })
            .is_err()
        );
        assert!(check_disable(true, "u1", "u1").is_err());
        assert!(check_disable(false, "u1", "u1").is_ok());
        assert!(check_disable(true, "u2", "u1").is_ok());
    }

    #[test]
    fn rows_show_as_the_api_always_did() {
        let shown = user(UserRow {
            id: "u1".into(),
            name: "ada".into(),
            is_admin: 1,
            created_at: 0,
            disabled_at: Some(1_000),
        });
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::json!({
                "name": "ada", "admin": true, "created": "1970-01-01T00:00:00.000Z",
                "disabled": "1970-01-01T00:00:01.000Z"
            })
        );
        let shown = token(TokenRow {
            id: "t1".into(),
            name: "ci".into(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            parent_id: Some("t0".into()),
        });
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::json!({
                "id": "t1", "name": "ci", "created": "1970-01-01T00:00:00.000Z",
                "expires": null, "revoked": null, "parent": "t0"
            })
        );
    }
}
